//! A throwaway PostgreSQL 15 cluster for the tests of one test binary,
//! started on first use and stopped when the test process exits. Each test
//! gets its own database in it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atc::db::PostgresSettings;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

struct Cluster {
    port: u16,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// Runs a PostgreSQL binary, as `postgres` when we are root (PostgreSQL refuses root).
fn pg(binary: &str) -> Command {
    let path = Path::new(PG_BIN).join(binary);
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    } else {
        Command::new(path)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn start_cluster() -> Result<Cluster, String> {
    let dir: PathBuf = std::env::temp_dir().join(format!("atc-test-pg-{}", std::process::id()));
    let port = init_and_start(&dir)?;
    stop_when_we_exit(&dir.join("data"), &dir);
    Ok(Cluster { port })
}

/// `initdb` into `dir/data`, then starts the cluster on a free port.
fn init_and_start(dir: &Path) -> Result<u16, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    if is_root() {
        let status = Command::new("chown").arg("postgres").arg(dir).status().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("cannot chown the cluster directory to postgres".into());
        }
    }
    let output = pg("initdb")
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !output.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let port = free_port();
    pg_ctl_start(dir, port)?;
    Ok(port)
}

/// Starts the cluster in `dir/data` on `port` and waits until it accepts connections.
fn pg_ctl_start(dir: &Path, port: u16) -> Result<(), String> {
    let options = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
        dir.display()
    );
    let output = pg("pg_ctl")
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-l")
        .arg(dir.join("log"))
        .args(["-o", &options, "-w", "start"])
        .output()
        .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
    if !output.status.success() {
        let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        return Err(format!("pg_ctl start failed: {}\n{log}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(())
}

/// Test binaries have no global teardown, so a small watcher stops the
/// cluster and removes its files once this process is gone.
fn stop_when_we_exit(data: &Path, dir: &Path) {
    let pg_ctl = Path::new(PG_BIN).join("pg_ctl");
    let stop = if is_root() {
        format!("runuser -u postgres -- {} -D {} -m immediate stop", pg_ctl.display(), data.display())
    } else {
        format!("{} -D {} -m immediate stop", pg_ctl.display(), data.display())
    };
    super::on_exit::run_when_this_process_exits(&format!("{stop} >/dev/null 2>&1; rm -rf {}", dir.display()));
}

fn settings(port: u16, database: &str) -> PostgresSettings {
    PostgresSettings {
        host: "127.0.0.1".into(),
        port,
        socket: None,
        user: "postgres".into(),
        password: String::new(),
        database: database.into(),
        sslmode: "disable".into(),
        ca_cert: None,
        connect_timeout: Duration::from_secs(10),
        acquire_timeout: Duration::from_secs(10),
        max_connections: 10,
    }
}

/// Settings for a new, empty database of its own.
pub async fn fresh_database() -> PostgresSettings {
    let cluster = CLUSTER.get_or_init(start_cluster).as_ref().unwrap_or_else(|e| panic!("{e}"));
    let name = format!("atc_test_{}", NEXT_DATABASE.fetch_add(1, Ordering::SeqCst));
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let admin = sqlx::PgPool::connect(&url).await.expect("connect to the test cluster");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    settings(cluster.port, &name)
}

/// A PostgreSQL cluster for one test alone, which the test may stop and
/// start again (same port, same data) to see how atc rides out an outage.
/// Dropping it stops the cluster and removes its files; so does the
/// process's exit, however it happens.
pub struct DedicatedPostgres {
    dir: PathBuf,
    port: u16,
}

static NEXT_DEDICATED: AtomicUsize = AtomicUsize::new(0);

impl DedicatedPostgres {
    /// A new, running cluster with an empty `atc` database.
    pub async fn start_new() -> DedicatedPostgres {
        let dir = std::env::temp_dir().join(format!(
            "atc-test-pg-{}-dedicated-{}",
            std::process::id(),
            NEXT_DEDICATED.fetch_add(1, Ordering::SeqCst)
        ));
        let port = init_and_start(&dir).unwrap_or_else(|e| panic!("{e}"));
        stop_when_we_exit(&dir.join("data"), &dir);
        let cluster = DedicatedPostgres { dir, port };
        let admin = sqlx::PgPool::connect(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
            .await
            .expect("connect to the dedicated cluster");
        sqlx::query("CREATE DATABASE atc").execute(&admin).await.expect("create the atc database");
        admin.close().await;
        cluster
    }

    /// Settings for its `atc` database, giving up on a connection after `acquire_timeout`.
    pub fn settings(&self, acquire_timeout: Duration) -> PostgresSettings {
        PostgresSettings { acquire_timeout, ..settings(self.port, "atc") }
    }

    /// Stops it as an administrator's `pg_ctl stop` does (fast mode: open
    /// connections are cut); returns once it no longer accepts connections.
    pub fn stop(&self) {
        let output = pg("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .expect("run pg_ctl stop");
        assert!(output.status.success(), "pg_ctl stop failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Starts it again on the same port with the same data.
    pub fn start(&self) {
        pg_ctl_start(&self.dir, self.port).unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for DedicatedPostgres {
    fn drop(&mut self) {
        let _ = pg("pg_ctl").arg("-D").arg(self.dir.join("data")).args(["-m", "immediate", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
