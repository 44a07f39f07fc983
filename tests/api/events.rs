//! The build event stream: order, resuming, live delivery, the end.

use std::time::Duration;

use atc::db::NewBuild;
use atc::engine::event::{BuildEvent, Origin};
use atc::engine::event_log::EventLog;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

/// A build no component runs (pending, of no job): the test writes its events.
pub(crate) async fn started_build(server: &TestServer) -> atc::db::Build {
    let db = &server.test_db.db;
    let team = db.find_team("main").await.unwrap().unwrap();
    let id = db.create_build(&NewBuild { team_id: team.id, name: "1".into(), ..Default::default() }).await.unwrap();
    db.find_build(id).await.unwrap().unwrap()
}

/// The event writer of a build, under a lease the test holds as if it
/// were the node running the build.
pub(crate) async fn event_log(server: &TestServer, build: &atc::db::Build) -> EventLog {
    let db = &server.test_db.db;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let taken = db.take_build_lease(build.id, "test-node", now_ms, 60_000).await.unwrap().expect("lease taken");
    EventLog::open(db.clone(), server.engine.hub.clone(), taken.lease, CancellationToken::new(), Default::default())
        .await
        .unwrap()
}

pub(crate) fn log(line: &str) -> BuildEvent {
    BuildEvent::Log { origin: Origin { id: "a".into(), source: Some("stdout") }, payload: line.into(), time: 1 }
}

/// Reads SSE frames until `end` (or the deadline), as (id, event name, data).
async fn read_frames(response: reqwest::Response, want: usize) -> Vec<(String, String, String)> {
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while frames.len() < want {
        let chunk = tokio::time::timeout_at(deadline, stream.next()).await.expect("frames in time");
        let Some(Ok(chunk)) = chunk else { break };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let raw: String = text.drain(..end + 2).collect();
            let field =
                |name: &str| raw.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap_or("").to_string();
            frames.push((field("id"), field("event"), field("data")));
        }
    }
    frames
}

async fn events_stream_in_order_live_and_resume(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let build = started_build(&server).await;
    let events = event_log(&server, &build).await;
    events.emit(log("one\n"));
    events.flush().await;

    let path = format!("/api/v1/builds/{}/events", build.id);
    let live = server.get(&path, Some(&token)).await;
    assert_eq!(live.headers()["content-type"], "text/event-stream; charset=utf-8");
    assert_eq!(live.headers()["x-atc-stream-version"], "2.0");
    let reader = tokio::spawn(read_frames(live, 4));
    // Written while the watcher is connected: delivered live.
    events.emit(log("two\n"));
    atc::engine::runner::finish(
        &server.test_db.db,
        &server.engine.hub,
        &events,
        &build,
        atc::db::BuildStatus::Succeeded,
    )
    .await
    .unwrap();

    let frames = reader.await.unwrap();
    let ids: Vec<&str> = frames.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(ids, ["0", "1", "2", "3"]);
    assert_eq!(frames[3].1, "end");
    let first: Value = serde_json::from_str(&frames[0].2).unwrap();
    assert_eq!(first["event"], "log");
    assert_eq!(first["version"], "5.1");
    assert_eq!(first["event_id"], "0");
    assert_eq!(first["data"]["payload"], "one\n");
    let status: Value = serde_json::from_str(&frames[2].2).unwrap();
    assert_eq!((status["event"].as_str(), status["data"]["status"].as_str()), (Some("status"), Some("succeeded")));

    // Resuming after event 1 replays only what follows.
    let resumed =
        server.request(reqwest::Method::GET, &path, Some(&token)).header("Last-Event-ID", "1").send().await.unwrap();
    let frames = read_frames(resumed, 2).await;
    assert_eq!(frames.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["2", "3"]);

    let bad =
        server.request(reqwest::Method::GET, &path, Some(&token)).header("Last-Event-ID", "x").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(server.get("/api/v1/builds/99999/events", Some(&token)).await.status(), 404);
    server.stop().await;
}

async fn every_watcher_gets_every_event(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let build = started_build(&server).await;
    let path = format!("/api/v1/builds/{}/events", build.id);
    let mut readers = Vec::new();
    for _ in 0..20 {
        let response = server.get(&path, Some(&token)).await;
        readers.push(tokio::spawn(read_frames(response, 202)));
    }
    let events = event_log(&server, &build).await;
    for n in 0..200 {
        events.emit(log(&format!("line {n}\n")));
    }
    atc::engine::runner::finish(&server.test_db.db, &server.engine.hub, &events, &build, atc::db::BuildStatus::Failed)
        .await
        .unwrap();
    for reader in readers {
        let frames = reader.await.unwrap();
        assert_eq!(frames.len(), 202);
        assert!(frames.iter().take(201).enumerate().all(|(i, f)| f.0 == i.to_string() && f.1 == "event"));
        assert_eq!(frames[201].1, "end");
    }
    server.stop().await;
}

async fn aborting_a_build_that_never_ran_ends_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let build = started_build(&server).await;
    let abort = server
        .request(reqwest::Method::PUT, &format!("/api/v1/builds/{}/abort", build.id), Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(abort.status(), 200);
    let after = server.get_json(&format!("/api/v1/builds/{}", build.id), Some(&token)).await;
    assert_eq!(after["status"], "aborted");
    let frames = read_frames(server.get(&format!("/api/v1/builds/{}/events", build.id), Some(&token)).await, 2).await;
    assert!(frames[0].2.contains("\"aborted\""), "{frames:?}");
    assert_eq!(frames[1].1, "end");
    server.stop().await;
}

on_both_backends!(
    events_stream_in_order_live_and_resume,
    every_watcher_gets_every_event,
    aborting_a_build_that_never_ran_ends_it,
);
