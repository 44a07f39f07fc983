//! Running builds on a cluster of two `atc web` nodes sharing PostgreSQL:
//! a build belongs to the node holding its lease, survives a database
//! restart, and is handed over only once the lease has run out; the node
//! that lost it writes nothing more.

use std::time::Duration;

use atc::db::PostgresSettings;

use crate::nodes::{Client, Node, eventually, printed_lines, statuses};
use crate::support::postgres::{DedicatedPostgres, fresh_database};

/// Short, so a handover happens within the test; renewed every second.
const LEASE: Duration = Duration::from_secs(3);
/// The default's order of magnitude: a restart must not hand anything over.
const LONG_LEASE: Duration = Duration::from_secs(20);

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
    let first = Node::start(&pg, LONG_LEASE, None);
    let client = Client::login(&first.url).await;
    let second = Node::start(&pg, LONG_LEASE, None);
    let _second_client = Client::login(&second.url).await;
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
    let a = Node::start(&pg, LEASE, None);
    let client_a = Client::login(&a.url).await;
    let b = Node::start(&pg, LEASE, None);
    Client::login(&b.url).await;
    client_a.set_printing_pipeline(200, "0.1").await;
    let build = client_a.trigger().await;
    client_a.wait_for_line(build, "line 3").await;
    let (owner, other) = owner_of(&pg, build, [&a, &b]).await;
    let watcher = Client::login(&other.url).await;

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
    let a = Node::start(&pg, LEASE, None);
    let client_a = Client::login(&a.url).await;
    let b = Node::start(&pg, LEASE, None);
    Client::login(&b.url).await;
    client_a.set_printing_pipeline(200, "0.1").await;
    let build = client_a.trigger().await;
    client_a.wait_for_line(build, "line 3").await;
    let (owner, other) = owner_of(&pg, build, [&a, &b]).await;
    let watcher = Client::login(&other.url).await;

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
