//! atc while its database is down: requests answer 503 at once, saying
//! so, instead of hanging; once the database is back, requests and
//! components carry on without a restart of atc.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::postgres::DedicatedPostgres;
use crate::support::{Backend, TestServer};

/// The `--postgres-acquire-timeout` of the server under test.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
/// What an answer may take beyond the acquire timeout on a busy machine.
const MARGIN: Duration = Duration::from_secs(4);
/// How long the database stays down: longer than the components'
/// 10-second interval, so each of them runs into the outage.
const OUTAGE: Duration = Duration::from_secs(12);

const PIPELINE: &str = r#"
resources:
- name: some-resource
  type: mock
  source: {initial_version: after-the-outage}
jobs:
- name: simple
  plan:
  - get: some-resource
    trigger: true
  - task: print-version
    config:
      platform: linux
      inputs: [{name: some-resource}]
      run: {path: cat, args: [some-resource/version]}
"#;

/// Sends a request, returning its status, body and how long it took.
async fn timed(server: &TestServer, method: Method, path: &str, token: Option<&str>) -> (u16, Value, Duration) {
    let started = Instant::now();
    let response = server.request(method, path, token).send().await.expect("atc answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, started.elapsed())
}

/// Asserts `path` answers 503 promptly, saying the database is unavailable.
async fn assert_unavailable(server: &TestServer, method: Method, path: &str, token: Option<&str>) {
    let (status, body, took) = timed(server, method.clone(), path, token).await;
    assert_eq!(status, 503, "{method} {path} while the database is down: {body}");
    let error = body["errors"][0].as_str().unwrap_or_default();
    assert!(error.starts_with("the database is unavailable: "), "{method} {path}: {body}");
    assert!(took < ACQUIRE_TIMEOUT + MARGIN, "{method} {path} took {took:?}");
}

async fn requests_answer_503_while_the_database_is_down_and_recover_after(backend: Backend) {
    let (server, postgres) = match backend {
        // SQLite is a file of atc's own: it cannot be down, health says ok.
        Backend::Sqlite => (TestServer::start(backend).await, None),
        Backend::Postgres => {
            let postgres = DedicatedPostgres::start_new().await;
            (TestServer::start_on_postgres(postgres.settings(ACQUIRE_TIMEOUT)).await, Some(postgres))
        }
    };
    let token = server.admin_token().await;
    let health = server.get_json("/api/v1/health", None).await;
    assert_eq!((health["status"].as_str(), health["database"]["status"].as_str()), (Some("ok"), Some("healthy")));

    if let Some(postgres) = &postgres {
        postgres.stop();
        let down_since = Instant::now();
        while down_since.elapsed() < OUTAGE {
            let (status, body, took) = timed(&server, Method::GET, "/api/v1/health", None).await;
            assert_eq!(status, 503, "health while the database is down: {body}");
            assert_eq!(body["status"], "failing");
            assert_eq!(body["database"]["status"], "unhealthy");
            let error = body["database"]["error"].as_str().unwrap_or_default();
            assert!(error.starts_with("the database is unavailable: "), "{body}");
            assert!(took < ACQUIRE_TIMEOUT + MARGIN, "health took {took:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_unavailable(&server, Method::GET, "/api/v1/teams/main/pipelines", Some(&token)).await;
        assert_unavailable(&server, Method::GET, "/api/v1/pipelines", None).await;
        assert_unavailable(&server, Method::PUT, "/api/v1/teams/main/pipelines/p/unpause", Some(&token)).await;
        postgres.start();

        let deadline = Instant::now() + Duration::from_secs(30);
        while server.get("/api/v1/health", None).await.status() != 200 {
            assert!(Instant::now() < deadline, "health stays failing after the database is back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // The same server, not restarted: requests work, and the checker, the
    // scheduler and the build tracker take a new pipeline through a build.
    let health = server.get_json("/api/v1/health", None).await;
    assert_eq!(health["database"]["status"], "healthy");
    server.set_and_unpause(&token, "after", PIPELINE).await;
    let builds = server
        .wait_for(&token, "/api/v1/teams/main/pipelines/after/jobs/simple/builds", "a build to succeed", |b| {
            b.as_array().is_some_and(|b| b.iter().any(|b| b["status"] == "succeeded"))
        })
        .await;
    let watched = server.watch(&token, builds[0]["id"].as_i64().unwrap()).await;
    assert!(watched.log().contains("after-the-outage"), "{}", watched.log());
    server.stop().await;
    drop(postgres);
}

on_both_backends!(requests_answer_503_while_the_database_is_down_and_recover_after);
