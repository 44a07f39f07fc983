//! A build outlives the atc process running it: `kill -9` atc while a task
//! prints, start it again, and the same build carries on, every line shown
//! once, no step run twice (each task refuses to start if its marker file
//! exists), on SQLite (`atc quickstart`) and PostgreSQL (`atc web`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{Quickstart, printed_password, quickstart};
use crate::nodes::{Client, Node, printed_lines, statuses};
use crate::support::Backend;
use crate::support::postgres::fresh_database;

/// Short, so that on PostgreSQL the restarted node takes the build over
/// soon after the killed one's lease runs out (SQLite takes it at once).
const LEASE: Duration = Duration::from_secs(3);

/// One atc, killed and started again on the same database and work dir.
enum Atc {
    Sqlite(Quickstart),
    Postgres(Node),
}

/// What survives a restart: the database and the work dir.
struct Installation {
    backend: Backend,
    dir: tempfile::TempDir,
    postgres: Option<atc::db::PostgresSettings>,
}

impl Installation {
    async fn new(backend: Backend) -> Installation {
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_database().await),
        };
        Installation { backend, dir: tempfile::tempdir().unwrap(), postgres }
    }

    fn start(&self) -> Atc {
        match (self.backend, &self.postgres) {
            (Backend::Postgres, Some(pg)) => Atc::Postgres(Node::start(pg, LEASE, Some(&self.dir.path().join("work")))),
            _ => Atc::Sqlite(quickstart(self.dir.path(), &[], &[])),
        }
    }

    /// A file for a test to create, outside anything atc manages.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Atc {
    fn url(&self) -> &str {
        match self {
            Atc::Sqlite(quickstart) => &quickstart.url,
            Atc::Postgres(node) => &node.url,
        }
    }

    async fn client(&self) -> Client {
        match self {
            Atc::Sqlite(quickstart) => Client::login_with(self.url(), &printed_password(quickstart)).await,
            Atc::Postgres(_) => Client::login(self.url()).await,
        }
    }

    /// `kill -9`: no chance to clean anything up.
    fn kill(self) {
        let child = match &self {
            Atc::Sqlite(quickstart) => quickstart.child.id(),
            Atc::Postgres(node) => node.child.id(),
        };
        let killed = std::process::Command::new("kill").args(["-KILL", &child.to_string()]).status().unwrap();
        assert!(killed.success());
        drop(self);
    }
}

/// A task that refuses to start twice (its marker exists), then prints.
fn guarded_task(name: &str, marker: &Path, script: &str) -> String {
    let marker = marker.display();
    format!(
        "  - task: {name}\n    config:\n      platform: linux\n      run:\n        path: sh\n        args:\n        - -c\n        - |\n          if [ -e {marker} ]; then echo '{name} started twice'; exit 99; fi\n          touch {marker}\n          {script}\n"
    )
}

fn count(lines: &[String], line: &str) -> usize {
    lines.iter().filter(|l| *l == line).count()
}

/// Killed while the task prints a line a second for 20 s; started again
/// within 5 s: the build carries on and succeeds, every line once.
async fn a_build_carries_on_after_atc_is_killed_mid_task(backend: Backend) {
    let install = Installation::new(backend).await;
    let atc = install.start();
    let client = atc.client().await;
    let script = "for n in $(seq 1 20); do echo \"line $n\"; sleep 1; done";
    client
        .set_pipeline(&format!(
            "jobs:\n- name: job\n  plan:\n{}",
            guarded_task("print", &install.path("marker"), script)
        ))
        .await;
    let build = client.trigger().await;
    client.wait_for_line(build, "line 3").await;

    atc.kill();
    let atc = install.start();
    let client = atc.client().await;
    let status = client.wait_for_end(build, Duration::from_secs(120)).await;
    let events: Vec<Value> = client.events(build).await.unwrap();
    let lines = printed_lines(&events);
    let expected: Vec<String> = (1..=20).map(|n| format!("line {n}")).collect();
    assert_eq!(lines, expected, "every line exactly once, in order");
    assert_eq!(status, "succeeded", "{events:?}");
    assert_eq!(statuses(&events), ["started", "succeeded"]);
    assert_eq!(events.iter().filter(|e| e["event"] == "start-task").count(), 1, "the task was announced once");
}

/// Killed while the second task runs, which then ends while no atc is
/// running: after the restart the first task is not run again, the second
/// one's end is picked up, and the build succeeds.
async fn a_step_that_ended_while_atc_was_down_is_picked_up(backend: Backend) {
    let install = Installation::new(backend).await;
    let atc = install.start();
    let client = atc.client().await;
    let go = install.path("go");
    let pipeline = format!(
        "jobs:\n- name: job\n  plan:\n{}{}",
        guarded_task("first", &install.path("first-marker"), "echo first ran"),
        guarded_task(
            "second",
            &install.path("second-marker"),
            &format!("echo second waiting; while [ ! -e {} ]; do sleep 0.1; done; echo second done", go.display())
        ),
    );
    client.set_pipeline(&pipeline).await;
    let build = client.trigger().await;
    client.wait_for_line(build, "second waiting").await;

    atc.kill();
    std::fs::write(&go, "").unwrap();
    let atc = install.start();
    let client = atc.client().await;
    let status = client.wait_for_end(build, Duration::from_secs(120)).await;
    let events = client.events(build).await.unwrap();
    let lines = printed_lines(&events);
    assert_eq!(status, "succeeded", "{lines:?}");
    for line in ["first ran", "second waiting", "second done"] {
        assert_eq!(count(&lines, line), 1, "{line} once: {lines:?}");
    }
    assert!(!lines.iter().any(|l| l.contains("started twice")), "{lines:?}");
    let finished: Vec<&Value> = events.iter().filter(|e| e["event"] == "finish-task").collect();
    assert_eq!(finished.len(), 2, "each task finished once: {finished:?}");
}

crate::on_both_backends!(
    a_build_carries_on_after_atc_is_killed_mid_task,
    a_step_that_ended_while_atc_was_down_is_picked_up,
);
