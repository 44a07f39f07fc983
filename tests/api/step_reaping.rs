//! The collector stops steps a runtime still has for builds that ended:
//! what atc leaves when it dies between recording a step's end and
//! stopping it. Steps of running builds stay.

use std::sync::Arc;
use std::time::Duration;

use atc::db::{Channel, NewBuild};
use atc::runtime::{Limits, ProcessSpec, Stdout, StepHandle, StepMetadata, StepSpec};

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

fn step_of(build_id: i64, name: &str) -> StepSpec {
    StepSpec {
        handle: StepHandle::parse(name).unwrap(),
        metadata: StepMetadata {
            team: "main".into(),
            build_id: Some(build_id),
            step_type: "task".into(),
            ..Default::default()
        },
        image: None,
        privileged: false,
        limits: Limits::default(),
        tags: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        caches: Vec::new(),
        process: ProcessSpec {
            path: "sh".into(),
            args: vec!["-c".into(), "sleep 60".into()],
            dir: String::new(),
            user: None,
            env: Vec::new(),
            stdin: None,
            stdout: Stdout::Stream,
        },
        sidecars: Vec::new(),
        trace: None,
    }
}

async fn steps_of_ended_builds_are_stopped(backend: Backend) {
    let server = TestServer::start(backend).await;
    let db = &server.test_db.db;
    let team = db.find_team("main").await.unwrap().unwrap();
    let build = |name: &str| NewBuild { team_id: team.id, name: name.into(), ..Default::default() };
    let ended = db.create_build(&build("1")).await.unwrap();
    let running = db.create_build(&build("2")).await.unwrap();
    let runtime = &server.runtime;
    let unobserved = || Arc::new(atc::engine::step_process::Unobserved);
    let left = runtime.start(step_of(ended, "left-behind"), unobserved()).await.unwrap();
    let kept = runtime.start(step_of(running, "still-running"), unobserved()).await.unwrap();
    // The build ends without stopping its step, as when atc dies in between.
    assert!(db.end_unstarted_build(ended, atc::db::BuildStatus::Succeeded, &[]).await.unwrap());

    db.notify(Channel::Collector, "").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let handles = loop {
        let handles: Vec<StepHandle> = runtime.list().await.unwrap().into_iter().map(|s| s.handle).collect();
        if !handles.contains(&left) || tokio::time::Instant::now() > deadline {
            break handles;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(handles, std::slice::from_ref(&kept), "only the step of the running build stays");
    runtime.stop(&kept, Duration::ZERO).await.unwrap();
    server.stop().await;
}

on_both_backends!(steps_of_ended_builds_are_stopped);
