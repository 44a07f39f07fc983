//! Running builds on a cluster of two `atc web` nodes sharing PostgreSQL:
//! a build belongs to the node holding its lease, survives a database
//! restart, and is handed over only once the lease has run out; the node
//! that lost it writes nothing more.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atc::db::PostgresSettings;
use serde_json::Value;

use super::{ATC, free_port};
use crate::support::postgres::{DedicatedPostgres, fresh_database};

const PASSWORD: &str = "lease-test-password";
/// Short, so a handover happens within the test; renewed every second.
const LEASE: Duration = Duration::from_secs(3);
/// The default's order of magnitude: a restart must not hand anything over.
const LONG_LEASE: Duration = Duration::from_secs(20);

/// An `atc web` node, killed when dropped; its log is kept for the test.
struct Node {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
    _work: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(pg: &PostgresSettings, lease: Duration) -> Node {
        let work = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut command = Command::new(ATC);
        command
            .args(["web", "--bind-ip", "127.0.0.1", "--bind-port", &port.to_string()])
            .args(["--work-dir", work.path().to_str().unwrap()])
            .args(["--add-local-user", &format!("admin:{PASSWORD}"), "--main-team-local-user", "admin"])
            .args(["--postgres-host", &pg.host, "--postgres-port", &pg.port.to_string()])
            .args(["--postgres-user", &pg.user, "--postgres-database", &pg.database])
            .args(["--build-lease-duration", &format!("{}s", lease.as_secs())])
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
        Node { child, url: format!("http://127.0.0.1:{port}"), log, _work: work }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status().unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// Polls `probe` until it returns `Some`, or panics after `timeout` saying `what`.
async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
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
struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    async fn login(node: &Node) -> Client {
        let http = reqwest::Client::new();
        let url = node.url.clone();
        let token = eventually(Duration::from_secs(30), "the node to serve logins", || {
            let http = http.clone();
            let url = url.clone();
            async move {
                let response = http
                    .post(format!("{url}/sky/issuer/token"))
                    .basic_auth("fly", Some("Zmx5"))
                    .form(&[("grant_type", "password"), ("username", "admin"), ("password", PASSWORD)])
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

    async fn get(&self, path: &str) -> Option<Value> {
        let response = self.http.get(format!("{}{path}", self.url)).bearer_auth(&self.token).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// Sets and unpauses a pipeline whose job `job` runs one task printing
    /// `line N` for N in 1..=lines, `interval` seconds apart.
    async fn set_printing_pipeline(&self, lines: u32, interval: &str) {
        let pipeline = format!(
            "jobs:\n- name: job\n  plan:\n  - task: print\n    config:\n      platform: linux\n      run:\n        path: sh\n        args: [-c, 'for n in $(seq 1 {lines}); do echo \"line $n\"; sleep {interval}; done']\n"
        );
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
        assert_eq!(put.status(), 201, "{}", put.text().await.unwrap());
        let unpause = self.http.put(format!("{base}/unpause")).bearer_auth(&self.token).send().await.unwrap();
        assert_eq!(unpause.status(), 200);
    }

    async fn trigger(&self) -> i64 {
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
    async fn events(&self, build: i64) -> Option<Vec<Value>> {
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

    async fn status(&self, build: i64) -> Option<String> {
        Some(self.get(&format!("/api/v1/builds/{build}")).await?["status"].as_str()?.to_string())
    }

    async fn wait_for_end(&self, build: i64, timeout: Duration) -> String {
        eventually(timeout, "the build to end", || async {
            self.status(build).await.filter(|status| status != "started" && status != "pending")
        })
        .await
    }

    async fn wait_for_line(&self, build: i64, line: &str) {
        eventually(Duration::from_secs(60), line, || async {
            let events = self.events(build).await?;
            events.iter().any(|e| e["data"]["payload"].as_str().is_some_and(|p| p.contains(line))).then_some(())
        })
        .await
    }
}

/// The task's output lines among `events`, in order.
fn printed_lines(events: &[Value]) -> Vec<String> {
    let output: String =
        events.iter().filter(|e| e["event"] == "log").filter_map(|e| e["data"]["payload"].as_str()).collect();
    output.lines().map(str::to_string).collect()
}

fn statuses(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "status")
        .filter_map(|e| e["data"]["status"].as_str())
        .map(Into::into)
        .collect()
}

/// Reads the build's lease straight from the database: (owner, epoch, deadline in ms).
async fn lease(pg: &PostgresSettings, build: i64) -> (Option<String>, i64, Option<i64>) {
    let url = format!("postgres://{}@{}:{}/{}", pg.user, pg.host, pg.port, pg.database);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let row = sqlx::query_as("SELECT lease_owner, lease_epoch, lease_deadline_ms FROM builds WHERE id = $1")
        .bind(build)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    row
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Which of the two nodes runs the build: its pid is in the lease's owner.
async fn owner_of<'a>(pg: &PostgresSettings, build: i64, nodes: [&'a Node; 2]) -> (&'a Node, &'a Node) {
    let (owner, _, _) = lease(pg, build).await;
    let owner = owner.expect("the running build has a lease");
    let pid_of = |node: &Node| format!("/{}/", node.pid());
    if owner.contains(&pid_of(nodes[0])) {
        (nodes[0], nodes[1])
    } else {
        assert!(owner.contains(&pid_of(nodes[1])), "lease owner {owner} is neither node");
        (nodes[1], nodes[0])
    }
}

/// A PostgreSQL restart under two nodes: the running build keeps running
/// on its node, ends `succeeded`, and its log has every line exactly once.
#[tokio::test]
async fn a_database_restart_leaves_a_running_build_running() {
    let cluster = DedicatedPostgres::start_new().await;
    let pg = cluster.settings(Duration::from_secs(5));
    let first = Node::start(&pg, LONG_LEASE);
    let client = Client::login(&first).await;
    let second = Node::start(&pg, LONG_LEASE);
    let _second_client = Client::login(&second).await;
    // Long enough for the other node's tracker to look at it twice after
    // the restart (every 10 s at most): its first look reconnects.
    client.set_printing_pipeline(50, "0.5").await;
    let build = client.trigger().await;
    client.wait_for_line(build, "line 3").await;

    cluster.stop();
    // The outage itself: as long as a quick restart by an operator.
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.start();

    let status = client.wait_for_end(build, Duration::from_secs(90)).await;
    let events = client.events(build).await.unwrap();
    let expected: Vec<String> = (1..=50).map(|n| format!("line {n}")).collect();
    assert_eq!(printed_lines(&events), expected, "logs: {}\n{}", first.log(), second.log());
    assert_eq!(statuses(&events), ["started", "succeeded"]);
    assert_eq!(status, "succeeded");
    assert!(events.iter().all(|e| e["event"] != "error"), "{events:?}");
}

/// A node stopped (SIGSTOP) for longer than the lease loses its build to
/// the other node, which ends it `errored` saying why, not before the
/// lease ran out; resumed, the stopped node writes nothing more for it.
#[tokio::test]
async fn a_stopped_node_hands_its_build_over_and_then_writes_nothing() {
    let pg = fresh_database().await;
    let a = Node::start(&pg, LEASE);
    let client_a = Client::login(&a).await;
    let b = Node::start(&pg, LEASE);
    Client::login(&b).await;
    client_a.set_printing_pipeline(200, "0.1").await;
    let build = client_a.trigger().await;
    client_a.wait_for_line(build, "line 3").await;
    let (owner, other) = owner_of(&pg, build, [&a, &b]).await;
    let watcher = Client::login(other).await;

    owner.signal("STOP");
    let stopped_at = now_ms();
    let (_, epoch, deadline) = lease(&pg, build).await;
    let deadline = deadline.unwrap();
    let status = watcher.wait_for_end(build, LEASE * 10).await;
    let (new_owner, new_epoch, new_deadline) = lease(&pg, build).await;
    // The other node takes over (bumping the epoch) and ends the build at
    // once, so its lease's deadline tells when it took over.
    let taken_at = new_deadline.unwrap() - LEASE.as_millis() as i64;
    assert_eq!(status, "errored", "stopped {}; logs:\n{}\n---\n{}", owner.pid(), a.log(), b.log());
    assert_eq!(new_epoch, epoch + 1);
    assert!(new_owner.unwrap().contains(&format!("/{}/", other.pid())));
    assert!(taken_at >= deadline, "taken over at {taken_at}, before the lease ran out at {deadline}");
    let handover = taken_at - stopped_at;
    assert!(handover <= (LEASE + Duration::from_secs(3)).as_millis() as i64, "handed over after {handover} ms");
    let events = watcher.events(build).await.unwrap();
    assert!(
        events.iter().any(|e| e["event"] == "error"
            && e["data"]["message"].as_str().is_some_and(|m| m.contains("stopped renewing its lease"))),
        "{events:?}"
    );
    assert_eq!(statuses(&events), ["started", "errored"]);

    owner.signal("CONT");
    // The resumed node finds out (by its renewal or its next write), stops
    // the build (its task kept printing all along) and gives up on it.
    eventually(Duration::from_secs(30), "the resumed node to give the build up", || async {
        owner.log().contains("build run failed").then_some(())
    })
    .await;
    let after = watcher.events(build).await.unwrap();
    assert_eq!(after, events, "the stopped node wrote after losing the build: {}", owner.log());
}

/// A node killed outright: its build is ended by the other node once the
/// lease has run out, and not before.
#[tokio::test]
async fn a_killed_nodes_build_ends_when_its_lease_runs_out() {
    let pg = fresh_database().await;
    let a = Node::start(&pg, LEASE);
    let client_a = Client::login(&a).await;
    let b = Node::start(&pg, LEASE);
    Client::login(&b).await;
    client_a.set_printing_pipeline(200, "0.1").await;
    let build = client_a.trigger().await;
    client_a.wait_for_line(build, "line 3").await;
    let (owner, other) = owner_of(&pg, build, [&a, &b]).await;
    let watcher = Client::login(other).await;

    owner.signal("KILL");
    let killed_at = now_ms();
    let (_, _, deadline) = lease(&pg, build).await;
    let deadline = deadline.unwrap();
    assert_eq!(watcher.wait_for_end(build, LEASE * 10).await, "errored");
    let (_, _, new_deadline) = lease(&pg, build).await;
    let taken_at = new_deadline.unwrap() - LEASE.as_millis() as i64;
    assert!(taken_at >= deadline, "taken over at {taken_at}, before the lease ran out at {deadline}");
    let handover = taken_at - killed_at;
    assert!(handover <= (LEASE + Duration::from_secs(3)).as_millis() as i64, "handed over after {handover} ms");
}
