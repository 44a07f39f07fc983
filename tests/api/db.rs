//! The database layer on both engines.

use std::time::{Duration, Instant};

use atc::db::{
    Backend as DbBackend, BuildFilter, Channel, DbError, EncryptionKey, JobSpec, LockKind, NewBuild, Page, PipelineRef,
    PipelineSpec, ResourceSpec, RoleMembers, TeamAuth,
};
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestDb};

fn auth(role: &str, user: &str) -> TeamAuth {
    let mut auth = TeamAuth::new();
    auth.insert(role.into(), RoleMembers { users: vec![user.into()], groups: vec![] });
    auth
}

fn spec(jobs: &[(&str, Option<&str>)], resources: &[&str]) -> PipelineSpec {
    PipelineSpec {
        config: json!({ "jobs": jobs.len() }),
        groups: json!([]),
        display: None,
        jobs: jobs
            .iter()
            .map(|(name, old)| JobSpec {
                name: name.to_string(),
                old_name: old.map(str::to_string),
                config: json!({ "name": name }),
                ..JobSpec::default()
            })
            .collect(),
        resources: resources
            .iter()
            .map(|name| ResourceSpec {
                name: name.to_string(),
                type_: "mock".into(),
                config: json!({ "name": name, "type": "mock" }),
                config_hash: "digest".into(),
                ..ResourceSpec::default()
            })
            .collect(),
        resource_types: vec![],
    }
}

async fn migrations_apply_once_and_report_versions(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = &test_db.db;
    assert_eq!(db.current_version().await.unwrap(), 0);
    db.migrate().await.unwrap();
    db.migrate().await.unwrap();
    assert_eq!(db.current_version().await.unwrap(), db.supported_version());
    assert!(db.supported_version() >= 1);
    let expected = match backend {
        Backend::Sqlite => DbBackend::Sqlite,
        Backend::Postgres => DbBackend::Postgres,
    };
    assert_eq!(db.backend(), expected);
}

async fn saving_a_config_creates_updates_and_deactivates(backend: Backend) {
    let test_db = TestDb::migrated(backend).await;
    let db = &test_db.db;
    let (team, created) = db.save_team("main", &auth("owner", "local:admin")).await.unwrap();
    assert!(created);
    let reference = PipelineRef::named("p");

    let first =
        db.save_pipeline(team.id, &reference, &spec(&[("a", None), ("b", None)], &["r"]), None, true).await.unwrap();
    assert!(first.created);
    assert_eq!(first.config_version, 1);
    let pipeline = db.find_pipeline("main", &reference).await.unwrap().unwrap();
    assert!(pipeline.paused, "new pipelines start paused");
    let jobs = db.pipeline_jobs(pipeline.id).await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    let a_id = jobs[0].id;

    // Renaming `a` to `c` keeps its row; dropping `b` deactivates it.
    let second =
        db.save_pipeline(team.id, &reference, &spec(&[("c", Some("a"))], &["r"]), Some(1), true).await.unwrap();
    assert!(!second.created);
    assert_eq!(second.config_version, 2);
    let jobs = db.pipeline_jobs(pipeline.id).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].name.as_str(), jobs[0].id), ("c", a_id));
    assert!(db.find_job(pipeline.id, "b").await.unwrap().is_none());

    // A stale version is refused and changes nothing.
    let stale = db.save_pipeline(team.id, &reference, &spec(&[("x", None)], &[]), Some(1), true).await;
    assert!(matches!(stale, Err(DbError::ConfigVersionConflict { expected: 1 })), "{stale:?}");
    assert_eq!(db.pipeline_config(pipeline.id).await.unwrap().unwrap().1, 2);
    assert_eq!(db.pipeline_jobs(pipeline.id).await.unwrap()[0].name, "c");
}

async fn configs_are_encrypted_at_rest(backend: Backend) {
    let test_db = TestDb::migrated(backend).await;
    let key = EncryptionKey::parse_flag("0123456789abcdef0123456789abcdef").unwrap();
    let plain = test_db.db.clone();
    let (team, _) = plain.save_team("main", &auth("owner", "local:admin")).await.unwrap();
    // Written before a key was configured: plain text.
    plain
        .save_pipeline(team.id, &PipelineRef::named("old"), &spec(&[("secret-job", None)], &[]), None, true)
        .await
        .unwrap();

    let sealed = plain.clone().with_encryption(Some(key.clone()));
    sealed.migrate().await.unwrap(); // encrypts what was plain
    sealed
        .save_pipeline(team.id, &PipelineRef::named("new"), &spec(&[("secret-job", None)], &[]), None, true)
        .await
        .unwrap();

    let raw: Vec<String> = test_db.strings("SELECT config FROM jobs").await;
    assert_eq!(raw.len(), 2);
    assert!(raw.iter().all(|c| !c.contains("secret-job")), "job configs must not be stored in the clear: {raw:?}");

    for name in ["old", "new"] {
        let pipeline = sealed.find_pipeline("main", &PipelineRef::named(name)).await.unwrap().unwrap();
        assert_eq!(sealed.pipeline_jobs(pipeline.id).await.unwrap()[0].config, json!({ "name": "secret-job" }));
        let without_key = plain.pipeline_jobs(pipeline.id).await;
        assert!(matches!(without_key, Err(DbError::Encryption(_))), "reading without the key must fail clearly");
    }
}

async fn teams_rename_and_refuse_duplicates(backend: Backend) {
    let test_db = TestDb::migrated(backend).await;
    let db = &test_db.db;
    db.save_team("a", &auth("owner", "local:x")).await.unwrap();
    db.save_team("b", &auth("owner", "local:y")).await.unwrap();
    let (_, created) = db.save_team("a", &auth("member", "local:z")).await.unwrap();
    assert!(!created);
    assert_eq!(db.find_team("a").await.unwrap().unwrap().auth, auth("member", "local:z"));
    assert!(matches!(db.rename_team("a", "b").await, Err(DbError::AlreadyExists(_))));
    assert!(db.rename_team("a", "c").await.unwrap());
    assert!(!db.rename_team("a", "d").await.unwrap());
    assert!(db.delete_team("c").await.unwrap());
    assert_eq!(db.list_teams().await.unwrap().iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["b"]);
}

async fn builds_paginate_by_id(backend: Backend) {
    let test_db = TestDb::migrated(backend).await;
    let db = &test_db.db;
    let (team, _) = db.save_team("main", &auth("owner", "local:admin")).await.unwrap();
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(
            db.create_build(&NewBuild { team_id: team.id, name: n.to_string(), ..NewBuild::default() }).await.unwrap(),
        );
    }
    let newest = db.builds(&BuildFilter::All, Page { from: None, to: None, limit: 2 }).await.unwrap();
    assert_eq!(newest.builds.iter().map(|b| b.id).collect::<Vec<_>>(), [ids[4], ids[3]]);
    assert_eq!(newest.newer, None);
    let older = newest.older.expect("an older page");
    assert_eq!(older.to, Some(ids[2]));

    let middle = db.builds(&BuildFilter::All, older).await.unwrap();
    assert_eq!(middle.builds.iter().map(|b| b.id).collect::<Vec<_>>(), [ids[2], ids[1]]);
    let newer = middle.newer.expect("a newer page");
    assert_eq!(newer.from, Some(ids[3]));
    let back = db.builds(&BuildFilter::All, newer).await.unwrap();
    assert_eq!(back.builds.iter().map(|b| b.id).collect::<Vec<_>>(), [ids[4], ids[3]]);

    let last = db.builds(&BuildFilter::All, middle.older.unwrap()).await.unwrap();
    assert_eq!(last.builds.iter().map(|b| b.id).collect::<Vec<_>>(), [ids[0]]);
    assert_eq!(last.older, None);
    assert!(matches!(
        db.builds(&BuildFilter::All, Page { from: Some(5), to: Some(1), limit: 2 }).await,
        Err(DbError::Invalid(_))
    ));
}

async fn pipelines_reorder(backend: Backend) {
    let test_db = TestDb::migrated(backend).await;
    let db = &test_db.db;
    let (team, _) = db.save_team("main", &auth("owner", "local:admin")).await.unwrap();
    for name in ["a", "b", "c"] {
        db.save_pipeline(team.id, &PipelineRef::named(name), &spec(&[("j", None)], &[]), None, true).await.unwrap();
    }
    assert_eq!(db.order_pipelines(team.id, &["c".into(), "a".into()]).await.unwrap(), Vec::<String>::new());
    let names: Vec<String> = db.team_pipelines("main").await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["c", "a", "b"]);
    assert_eq!(db.order_pipelines(team.id, &["zzz".into()]).await.unwrap(), ["zzz"]);
}

/// A second handle on the same database, as another atc node would have.
async fn another_node(test_db: &TestDb) -> atc::db::Db {
    match (&test_db.sqlite_path, &test_db.postgres) {
        (_, Some(settings)) => atc::db::Db::connect_postgres(settings).await.unwrap(),
        _ => test_db.db.clone(),
    }
}

async fn locks_are_exclusive_across_nodes(backend: Backend) {
    let test_db = TestDb::migrated(backend).await;
    let node_a = test_db.db.clone();
    let node_b = another_node(&test_db).await;
    let held = node_a.try_lock(LockKind::SchedulingJob, 7).await.unwrap().expect("free lock");
    assert!(node_a.try_lock(LockKind::SchedulingJob, 7).await.unwrap().is_none(), "not twice on one node");
    assert!(node_b.try_lock(LockKind::SchedulingJob, 7).await.unwrap().is_none(), "not on another node");
    assert!(node_b.try_lock(LockKind::CheckingResource, 7).await.unwrap().is_some(), "kinds are separate");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if node_b.try_lock(LockKind::SchedulingJob, 7).await.unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the lock was never released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn notifications_reach_every_node(backend: Backend) {
    let test_db = TestDb::migrated(backend).await;
    let node_a = test_db.db.clone();
    let node_b = another_node(&test_db).await;
    let mut on_b = node_b.subscribe(Channel::Scheduler);
    let mut on_a = node_a.subscribe(Channel::Scheduler);
    // The PostgreSQL listener connects in the background: repeat until heard.
    let deadline = Instant::now() + Duration::from_secs(10);
    let heard = loop {
        node_a.notify(Channel::Scheduler, "job-1").await.unwrap();
        if let Ok(Ok(payload)) = tokio::time::timeout(Duration::from_millis(100), on_b.recv()).await {
            break payload;
        }
        assert!(Instant::now() < deadline, "node b never heard the notification");
    };
    assert_eq!(heard, "job-1");
    assert_eq!(tokio::time::timeout(Duration::from_secs(5), on_a.recv()).await.unwrap().unwrap(), "job-1");
}

/// Two checks of one resource saving the same new versions at once (a
/// manual check next to the periodic one, maybe on two nodes): both
/// succeed and each version exists once.
async fn concurrent_checks_save_each_version_once(backend: Backend) {
    let test_db = TestDb::migrated(backend).await;
    let (team, _) = test_db.db.save_team("main", &auth("owner", "local:admin")).await.unwrap();
    let saved = test_db
        .db
        .save_pipeline(team.id, &PipelineRef::named("p"), &spec(&[("j", None)], &["r"]), None, false)
        .await
        .unwrap();
    let resource = test_db.db.find_resource(saved.pipeline_id, "r").await.unwrap().unwrap();
    let owner = atc::db::VersionOwner::Resource(resource.id);
    let batch: Vec<_> = (0..20).map(|i| (serde_json::json!({ "v": i.to_string() }), serde_json::json!([]))).collect();
    let nodes = [test_db.db.clone(), another_node(&test_db).await, test_db.db.clone(), another_node(&test_db).await];
    let saves = nodes.iter().map(|db| db.save_versions(owner, &resource.config_hash, &batch, None));
    for saved in futures_util::future::join_all(saves).await {
        assert_eq!(saved.expect("every concurrent save succeeds").len(), batch.len());
    }
    assert_eq!(test_db.count("SELECT COUNT(*) FROM resource_versions").await, batch.len() as i64);
}

on_both_backends!(
    concurrent_checks_save_each_version_once,
    locks_are_exclusive_across_nodes,
    notifications_reach_every_node,
    migrations_apply_once_and_report_versions,
    saving_a_config_creates_updates_and_deactivates,
    configs_are_encrypted_at_rest,
    teams_rename_and_refuse_duplicates,
    builds_paginate_by_id,
    pipelines_reorder,
);
