//! Build leases in the database, on both engines: who may take a build,
//! and that writes under a lease that moved on change nothing.

use atc::db::{BuildLease, BuildStatus, DbError, NewBuild, StoredEvent};

use crate::on_both_backends;
use crate::support::{Backend, TestDb};

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

on_both_backends!(
    a_lease_is_taken_over_only_after_its_deadline,
    a_build_that_ended_under_its_lease_is_still_held,
    writes_under_a_lost_lease_change_nothing,
    a_build_that_never_ran_ends_without_a_lease,
);
