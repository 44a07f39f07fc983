//! Build leases in the database, on both engines: who may take a build,
//! and that writes under a lease that moved on change nothing.

use std::time::Duration;

use atc::db::{BuildLease, BuildStatus, DbError, NewBuild, StoredEvent};
use reqwest::Method;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestDb, TestServer, local_runtime, server_options_with};

const MINUTE_MS: i64 = 60_000;

fn event(event_id: i64, line: &str) -> StoredEvent {
    StoredEvent { event_id, kind: "log".into(), version: "5.1".into(), payload: format!("{{\"payload\":\"{line}\"}}") }
}

async fn new_build(test_db: &TestDb) -> i64 {
    let team = test_db.db.save_team("main", &atc::db::TeamAuth::new()).await.unwrap();
    test_db.db.create_build(&NewBuild { team_id: team.0.id, name: "1".into(), ..Default::default() }).await.unwrap()
}

async fn a_lease_is_taken_over_only_after_its_deadline(backend: Backend) {
    let test_db = TestDb::migrated(backend).await;
    let db = &test_db.db;
    let build = new_build(&test_db).await;
    let first = db.take_build_lease(build, "node-a", 1_000, MINUTE_MS).await.unwrap().expect("a free build");
    assert_eq!((first.lease.epoch, first.previous_owner.as_deref(), first.was_running), (1, None, false));
    assert!(db.mark_build_running(&first.lease).await.unwrap());

    // Held until its deadline, by anyone else.
    assert_eq!(db.take_build_lease(build, "node-b", 1_000 + MINUTE_MS - 1, MINUTE_MS).await.unwrap(), None);
    // Renewed by its owner, it lasts longer.
    assert_eq!(db.renew_build_leases("node-a", 30_000, MINUTE_MS).await.unwrap(), vec![(build, 1)]);
    assert_eq!(db.take_build_lease(build, "node-b", 1_000 + MINUTE_MS + 1, MINUTE_MS).await.unwrap(), None);

    let second = db.take_build_lease(build, "node-b", 30_000 + MINUTE_MS + 1, MINUTE_MS).await.unwrap().unwrap();
    assert_eq!((second.lease.epoch, second.previous_owner.as_deref(), second.was_running), (2, Some("node-a"), true));
    // The old owner's renewal no longer finds it.
    assert!(db.renew_build_leases("node-a", 40_000, MINUTE_MS).await.unwrap().is_empty());
}

async fn writes_under_a_lost_lease_change_nothing(backend: Backend) {
    let test_db = TestDb::migrated(backend).await;
    let db = &test_db.db;
    let build = new_build(&test_db).await;
    let old = db.take_build_lease(build, "node-a", 0, 10).await.unwrap().unwrap().lease;
    db.append_events(&old, &[event(0, "a0"), event(1, "a1")], &[], None).await.unwrap();
    // Writing a batch again (a retry after a lost answer) is harmless.
    db.append_events(&old, &[event(0, "a0"), event(1, "a1")], &[], None).await.unwrap();

    let new = db.take_build_lease(build, "node-b", 100, MINUTE_MS).await.unwrap().unwrap().lease;
    assert_eq!(db.next_event_id(build).await.unwrap(), 2);
    let stale = db.append_events(&old, &[event(2, "late")], &[], Some(BuildStatus::Succeeded)).await;
    assert!(matches!(stale, Err(DbError::LeaseLost { build_id }) if build_id == build), "{stale:?}");
    let forged = BuildLease { epoch: new.epoch + 1, ..new.clone() };
    assert!(matches!(db.append_events(&forged, &[event(2, "x")], &[], None).await, Err(DbError::LeaseLost { .. })));

    db.append_events(&new, &[event(2, "b2")], &[], Some(BuildStatus::Errored)).await.unwrap();
    let stored = db.build_events(build, 0, 10).await.unwrap();
    let payloads: Vec<&str> = stored.iter().map(|e| e.payload.as_str()).collect();
    assert_eq!(payloads, [r#"{"payload":"a0"}"#, r#"{"payload":"a1"}"#, r#"{"payload":"b2"}"#]);
    let ended = db.find_build(build).await.unwrap().unwrap();
    assert_eq!((ended.status, ended.completed), (BuildStatus::Errored, true));
    // An ended build takes no more events, even from its last owner.
    assert!(matches!(db.append_events(&new, &[event(3, "after")], &[], None).await, Err(DbError::LeaseLost { .. })));
}

async fn a_build_that_never_ran_ends_without_a_lease(backend: Backend) {
    let test_db = TestDb::migrated(backend).await;
    let db = &test_db.db;
    let build = new_build(&test_db).await;
    let row = db.find_build(build).await.unwrap().unwrap();
    let ended = atc::engine::runner::end_unstarted(db, &row, BuildStatus::Errored, Some("cannot compile".into())).await;
    assert!(ended.unwrap());
    let kinds: Vec<String> = db.build_events(build, 0, 10).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["error", "status"]);
    assert_eq!(db.next_event_id(build).await.unwrap(), 2);
    // Once it ran, only its node may end it.
    let other = new_build(&test_db).await;
    let lease = db.take_build_lease(other, "node-a", 0, MINUTE_MS).await.unwrap().unwrap().lease;
    assert!(db.mark_build_running(&lease).await.unwrap());
    let row = db.find_build(other).await.unwrap().unwrap();
    assert!(!atc::engine::runner::end_unstarted(db, &row, BuildStatus::Aborted, None).await.unwrap());
}

/// A build that ends between two renewals has nothing left to renew, but
/// its node still holds it: it must not look taken over.
async fn a_build_that_ended_under_its_lease_is_still_held(backend: Backend) {
    let test_db = TestDb::migrated(backend).await;
    let db = &test_db.db;
    let build = new_build(&test_db).await;
    let lease = db.take_build_lease(build, "node-a", 0, MINUTE_MS).await.unwrap().unwrap().lease;
    assert!(db.mark_build_running(&lease).await.unwrap());
    db.append_events(&lease, &[event(0, "done")], &[], Some(BuildStatus::Succeeded)).await.unwrap();

    assert_eq!(db.renew_build_leases("node-a", 1_000, MINUTE_MS).await.unwrap(), vec![(build, 1)]);
    assert!(db.renew_build_leases("node-b", 1_000, MINUTE_MS).await.unwrap().is_empty());
    // Once its lease has run out, an ended build is nobody's.
    assert!(db.renew_build_leases("node-a", MINUTE_MS + 1, MINUTE_MS).await.unwrap().is_empty());
}

/// A build taken up while a renewal is under way is held, though that
/// renewal did not return it: it must not be stopped as taken over (a single
/// node logged "another node took over this build" and the build waited a
/// lease out). Short leases renew often, so many builds start during one.
async fn builds_taken_up_during_a_renewal_are_not_taken_for_another_nodes(backend: Backend) {
    const JOBS: usize = 10;
    const BUILDS_PER_JOB: usize = 20;
    let (runtime, _work) = local_runtime().await;
    let mut options = server_options_with(runtime, &[]);
    options.build_lease_duration = Duration::from_millis(300);
    let server = TestServer::start_with(backend, options).await;
    let token = server.admin_token().await;
    let jobs: String = (0..JOBS)
        .map(|job| {
            format!("- name: j{job}\n  plan:\n  - task: t\n    config: {{platform: linux, run: {{path: echo, args: [hi]}}}}\n")
        })
        .collect();
    server.set_and_unpause(&token, "renewals", &format!("jobs:\n{jobs}")).await;

    let triggers = (0..JOBS * BUILDS_PER_JOB).map(|n| {
        let path = format!("/api/v1/teams/main/pipelines/renewals/jobs/j{}/builds", n % JOBS);
        let request = server.request(Method::POST, &path, Some(&token));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
        }
    });
    let builds = futures_util::future::join_all(triggers).await;
    for build in builds {
        let path = format!("/api/v1/builds/{build}");
        let ended = server
            .wait_for(&token, &path, "the build to end", |b| {
                !matches!(b["status"].as_str(), Some("pending" | "started"))
            })
            .await;
        assert_eq!(ended["status"], "succeeded", "build {build}: {ended}");
    }
    // Stopped as taken over, a build is taken up again once its lease runs
    // out, under a new epoch: each must have had one.
    assert_eq!(server.test_db.count("SELECT count(*) FROM builds WHERE lease_epoch <> 1").await, 0);
    server.stop().await;
}

/// A node that finds its build taken over stops following it but leaves its
/// running step to the new owner, which attaches to it where it was. Here
/// the new owner is the node itself, once the lease moved away from under
/// it has run out: the step must still be there, and run once.
async fn a_build_taken_over_keeps_its_running_step(backend: Backend) {
    let (runtime, _work) = local_runtime().await;
    let mut options = server_options_with(runtime, &[]);
    options.build_lease_duration = Duration::from_millis(300);
    let server = TestServer::start_with(backend, options).await;
    let token = server.admin_token().await;
    let marker = tempfile::tempdir().unwrap();
    let marker = marker.path().join("started");
    let script = format!(
        "test -e {0} && {{ echo started twice; exit 9; }}; touch {0}; echo first; sleep 1; echo second",
        marker.display()
    );
    let pipeline = format!(
        "jobs:\n- name: j\n  plan:\n  - task: t\n    config:\n      platform: linux\n      run: {{path: sh, args: [-c, '{script}']}}\n"
    );
    server.set_and_unpause(&token, "handover", &pipeline).await;
    let path = "/api/v1/teams/main/pipelines/handover/jobs/j/builds";
    let response = server.request(Method::POST, path, Some(&token)).send().await.unwrap();
    let build = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server.test_db.count("SELECT count(*) FROM build_events WHERE payload LIKE '%first%'").await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the task printed its first line");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Another node's lease, already run out: this node loses the build, then takes it up again.
    server
        .test_db
        .scalar(
            "UPDATE builds SET lease_owner = 'another-node', lease_epoch = lease_epoch + 1, lease_deadline_ms = 0
             WHERE NOT completed RETURNING id",
        )
        .await;

    let watched = server.watch(&token, build).await;
    assert_eq!((watched.status().as_str(), watched.log().as_str()), ("succeeded", "first\nsecond\n"));
    assert!(server.test_db.scalar("SELECT lease_epoch FROM builds").await >= 3, "the build was taken up again");
    server.stop().await;
}

on_both_backends!(
    a_build_taken_over_keeps_its_running_step,
    builds_taken_up_during_a_renewal_are_not_taken_for_another_nodes,
    a_lease_is_taken_over_only_after_its_deadline,
    a_build_that_ended_under_its_lease_is_still_held,
    writes_under_a_lost_lease_change_nothing,
    a_build_that_never_ran_ends_without_a_lease,
);
