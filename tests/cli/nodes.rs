//! `atc` processes for tests that start, stop and kill them: `atc web`
//! nodes on PostgreSQL, and an API client that logs in to any of them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atc::db::PostgresSettings;
use serde_json::Value;

use super::{ATC, free_port};

pub const PASSWORD: &str = "node-test-password";

/// An `atc web` node, killed when dropped; its log is kept for the test.
pub struct Node {
    pub child: Child,
    pub url: String,
    log: Arc<Mutex<String>>,
    /// The work dir this node made for itself, if it was not given one.
    _work: Option<tempfile::TempDir>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// `atc web` on `pg`, in `work_dir` (a temporary one when `None`).
    pub fn start(pg: &PostgresSettings, lease: Duration, work_dir: Option<&Path>) -> Node {
        Node::start_with(pg, lease, work_dir, &[])
    }

    /// As [`Node::start`], with more flags (another runtime's).
    pub fn start_with(pg: &PostgresSettings, lease: Duration, work_dir: Option<&Path>, flags: &[String]) -> Node {
        let own_work = work_dir.is_none().then(|| tempfile::tempdir().unwrap());
        let work = work_dir.map(Path::to_path_buf).unwrap_or_else(|| own_work.as_ref().unwrap().path().to_path_buf());
        let port = free_port();
        let mut command = Command::new(ATC);
        command
            .args(["web", "--bind-ip", "127.0.0.1", "--bind-port", &port.to_string()])
            .args(["--work-dir", work.to_str().unwrap()])
            .args(["--add-local-user", &format!("admin:{PASSWORD}"), "--main-team-local-user", "admin"])
            .args(["--postgres-host", &pg.host, "--postgres-port", &pg.port.to_string()])
            .args(["--postgres-user", &pg.user, "--postgres-database", &pg.database])
            .args(["--build-lease-duration", &format!("{}s", lease.as_secs())])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars() {
            if key.starts_with("CONCOURSE_") {
                command.env_remove(key);
            }
        }
        let mut child = command.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Node { child, url: format!("http://127.0.0.1:{port}"), log, _work: own_work }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status().unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// Polls `probe` until it returns `Some`, or panics after `timeout` saying `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An API client logged in to one node (a token works on every node).
pub struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    /// Logs in as `admin` with the nodes' password.
    pub async fn login(url: &str) -> Client {
        Client::login_with(url, PASSWORD).await
    }

    pub async fn login_with(url: &str, password: &str) -> Client {
        let http = reqwest::Client::new();
        let url = url.to_string();
        let token = eventually(Duration::from_secs(30), "the node to serve logins", || {
            let http = http.clone();
            let url = url.clone();
            async move {
                let response = http
                    .post(format!("{url}/sky/issuer/token"))
                    .basic_auth("fly", Some("Zmx5"))
                    .form(&[("grant_type", "password"), ("username", "admin"), ("password", password)])
                    .send()
                    .await
                    .ok()?;
                let body: Value = response.json().await.ok()?;
                body["access_token"].as_str().map(str::to_string)
            }
        })
        .await;
        Client { http, url, token }
    }

    pub async fn get(&self, path: &str) -> Option<Value> {
        let response = self.http.get(format!("{}{path}", self.url)).bearer_auth(&self.token).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// Sets and unpauses a pipeline whose job `job` runs one task printing
    /// `line N` for N in 1..=lines, `interval` seconds apart.
    pub async fn set_printing_pipeline(&self, lines: u32, interval: &str) {
        self.set_pipeline(&format!(
            "jobs:\n- name: job\n  plan:\n  - task: print\n    config:\n      platform: linux\n      run:\n        path: sh\n        args: [-c, 'for n in $(seq 1 {lines}); do echo \"line $n\"; sleep {interval}; done']\n"
        ))
        .await;
    }

    /// Sets (or replaces) and unpauses pipeline `p` (whose job the tests trigger is `job`).
    pub async fn set_pipeline(&self, pipeline: &str) {
        let pipeline = pipeline.to_string();
        let base = format!("{}/api/v1/teams/main/pipelines/p", self.url);
        let put = self
            .http
            .put(format!("{base}/config"))
            .bearer_auth(&self.token)
            .header("Content-Type", "application/x-yaml")
            .body(pipeline)
            .send()
            .await
            .unwrap();
        // 201 when created, 200 when it replaces an earlier config.
        assert!([200, 201].contains(&put.status().as_u16()), "{}", put.text().await.unwrap());
        let unpause = self.http.put(format!("{base}/unpause")).bearer_auth(&self.token).send().await.unwrap();
        assert_eq!(unpause.status(), 200);
    }

    pub async fn trigger(&self) -> i64 {
        let response = self
            .http
            .post(format!("{}/api/v1/teams/main/pipelines/p/jobs/job/builds", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    /// The build's events as stored: all of a finished build's, or what
    /// arrives within a second of a running one's.
    pub async fn events(&self, build: i64) -> Option<Vec<Value>> {
        let response =
            self.http.get(format!("{}/api/v1/builds/{build}/events", self.url)).bearer_auth(&self.token).send().await;
        let mut stream = response.ok()?.bytes_stream();
        let mut text = String::new();
        let until = tokio::time::Instant::now() + Duration::from_secs(1);
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(until, futures_util::StreamExt::next(&mut stream)).await
        {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        Some(
            text.lines()
                .filter_map(|line| line.strip_prefix("data: "))
                .filter_map(|data| serde_json::from_str::<Value>(data).ok())
                .collect(),
        )
    }

    pub async fn status(&self, build: i64) -> Option<String> {
        Some(self.get(&format!("/api/v1/builds/{build}")).await?["status"].as_str()?.to_string())
    }

    pub async fn wait_for_end(&self, build: i64, timeout: Duration) -> String {
        eventually(timeout, "the build to end", || async {
            self.status(build).await.filter(|status| status != "started" && status != "pending")
        })
        .await
    }

    pub async fn wait_for_line(&self, build: i64, line: &str) {
        eventually(Duration::from_secs(60), line, || async {
            let events = self.events(build).await?;
            events.iter().any(|e| e["data"]["payload"].as_str().is_some_and(|p| p.contains(line))).then_some(())
        })
        .await
    }
}

/// The task's output lines among `events`, in order.
pub fn printed_lines(events: &[Value]) -> Vec<String> {
    let output: String =
        events.iter().filter(|e| e["event"] == "log").filter_map(|e| e["data"]["payload"].as_str()).collect();
    output.lines().map(str::to_string).collect()
}

pub fn statuses(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "status")
        .filter_map(|e| e["data"]["status"].as_str())
        .map(Into::into)
        .collect()
}
