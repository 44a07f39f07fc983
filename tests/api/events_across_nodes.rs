//! A build's events reach watchers on every node as soon as they are
//! stored: the writer announces each batch through the database, and a
//! node whose notification connection dropped reads again once it is back.

use std::pin::Pin;
use std::time::Duration;

use atc::db::StoredEvent;
use atc::engine::event_notice;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use tokio::time::Instant;

use crate::events::{event_log, log, started_build};
use crate::on_both_backends;
use crate::support::{Backend, TestServer};

/// Far below the 2 s the events route once waited between looks at the
/// database, far above what an announcement takes.
const PROMPTLY: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Frame {
    id: String,
    event: String,
    data: String,
}

#[derive(Debug)]
enum Next {
    Frame(Frame),
    Ended,
    TimedOut,
}

/// A server-sent event stream, read frame by frame.
struct Frames {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    text: String,
}

impl Frames {
    async fn watch(node_url: &str, build_id: i64, token: &str) -> Frames {
        let response = reqwest::Client::new()
            .get(format!("{node_url}/api/v1/builds/{build_id}/events"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        Frames { body: Box::pin(response.bytes_stream()), text: String::new() }
    }

    async fn next(&mut self, within: Duration) -> Next {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let raw: String = self.text.drain(..end + 2).collect();
                let field = |name: &str| {
                    raw.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap_or("").to_string()
                };
                return Next::Frame(Frame { id: field("id"), event: field("event"), data: field("data") });
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return Next::TimedOut,
                Ok(Some(Ok(chunk))) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(_) => return Next::Ended,
            }
        }
    }

    /// The next frame, which must come within `within`.
    async fn expect(&mut self, within: Duration) -> Frame {
        match self.next(within).await {
            Next::Frame(frame) => frame,
            other => panic!("expected a frame within {within:?}, got {other:?}"),
        }
    }
}

fn log_line(frame: &Frame) -> String {
    let envelope: Value = serde_json::from_str(&frame.data).unwrap();
    envelope["data"]["payload"].as_str().unwrap_or_default().to_string()
}

async fn a_watcher_on_another_node_gets_each_event_as_it_is_stored(backend: Backend) {
    let server = TestServer::start(backend).await;
    let other = server.start_another_node().await;
    let token = server.admin_token().await;
    let build = started_build(&server).await;
    // The first node writes the build's events; the watcher is on the other.
    let events = event_log(&server, &build).await;
    let mut frames = Frames::watch(&other.url, build.id, &token).await;

    let mut lags = Vec::new();
    for n in 0..5 {
        events.emit(log(&format!("line {n}\n")));
        events.flush().await;
        let stored = Instant::now();
        let frame = frames.expect(Duration::from_secs(10)).await;
        lags.push(stored.elapsed());
        assert_eq!((frame.id.as_str(), frame.event.as_str()), (n.to_string().as_str(), "event"));
        assert_eq!(log_line(&frame), format!("line {n}\n"));
    }
    let db = &server.test_db.db;
    atc::engine::runner::finish(db, &server.engine.hub, &events, &build, atc::db::BuildStatus::Succeeded)
        .await
        .unwrap();
    let stored = Instant::now();
    let status = frames.expect(Duration::from_secs(10)).await;
    let end = frames.expect(Duration::from_secs(10)).await;
    lags.push(stored.elapsed());
    assert_eq!((status.id.as_str(), status.event.as_str()), ("5", "event"));
    assert!(status.data.contains(r#""status":"succeeded""#), "{status:?}");
    assert_eq!((end.id.as_str(), end.event.as_str()), ("6", "end"));
    // Nothing follows the end: every event came exactly once.
    assert!(matches!(frames.next(Duration::from_secs(10)).await, Next::Ended));

    println!("{backend:?}: stored-to-watcher lag on another node: {lags:?}");
    assert!(lags.iter().all(|lag| *lag < PROMPTLY), "every event within {PROMPTLY:?}: {lags:?}");
    other.stop().await;
    server.stop().await;
}

fn stored_log(event_id: i64, line: &str) -> StoredEvent {
    StoredEvent {
        event_id,
        kind: "log".into(),
        version: "5.1".into(),
        payload: format!(r#"{{"origin":{{"id":"a","source":"stdout"}},"payload":"{line}","time":1}}"#),
    }
}

/// Events whose announcement was lost (stored here without one) reach the
/// watcher once its node's notification connection is back, long before
/// it would look at the database on its own.
async fn a_node_reads_again_after_its_notification_connection_drops(backend: Backend) {
    let server = TestServer::start(backend).await;
    let other = server.start_another_node().await;
    let token = server.admin_token().await;
    let db = &server.test_db.db;
    let build = started_build(&server).await;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let lease = db.take_build_lease(build.id, "test-node", now_ms, 60_000).await.unwrap().expect("lease taken").lease;
    let mut frames = Frames::watch(&other.url, build.id, &token).await;

    db.append_events(&lease, &[stored_log(0, "announced")], &[], None).await.unwrap();
    event_notice::announce(db, build.id, Some(1)).await.unwrap();
    assert_eq!(log_line(&frames.expect(PROMPTLY).await), "announced");

    db.append_events(&lease, &[stored_log(1, "unannounced")], &[], None).await.unwrap();
    assert!(matches!(frames.next(PROMPTLY).await, Next::TimedOut), "nothing tells the watcher yet");
    let dropped = server
        .test_db
        .strings(
            "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN %'",
        )
        .await;
    assert_eq!(dropped, ["true", "true"], "both nodes' notification connections");
    let unannounced = frames.expect(Duration::from_secs(10)).await;
    assert_eq!((unannounced.id.as_str(), log_line(&unannounced).as_str()), ("1", "unannounced"));

    // Announcements reach the node again.
    let status = r#"{"status":"succeeded","time":1}"#;
    let last = StoredEvent { event_id: 2, kind: "status".into(), version: "1.0".into(), payload: status.into() };
    db.append_events(&lease, &[last], &[], Some(atc::db::BuildStatus::Succeeded)).await.unwrap();
    event_notice::announce(db, build.id, Some(3)).await.unwrap();
    assert_eq!(frames.expect(PROMPTLY).await.id, "2");
    assert_eq!(frames.expect(PROMPTLY).await.event, "end");
    other.stop().await;
    server.stop().await;
}

on_both_backends!(a_watcher_on_another_node_gets_each_event_as_it_is_stored);

/// PostgreSQL only: SQLite's notifications never leave the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reads_again_after_its_notification_connection_drops_postgres() {
    a_node_reads_again_after_its_notification_connection_drops(Backend::Postgres).await
}
