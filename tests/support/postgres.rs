//! A throwaway PostgreSQL 15 cluster for the tests of one test binary,
//! started on first use and stopped when the test process exits. Each test
//! gets its own database in it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
    let port = free_port();
    let data = init_cluster(&dir)?;
    pg_ctl_start(&data, &dir, port)?;
    stop_when_we_exit(&data, &dir);
    Ok(Cluster { port })
}

/// `initdb` into `dir/data` (owned by `postgres` when we are root).
fn init_cluster(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    if is_root() {
        let status = Command::new("chown").arg("postgres").arg(dir).status().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("cannot chown the cluster directory to postgres".into());
        }
    }
    let data = dir.join("data");
    let output = pg("initdb")
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !output.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(data)
}

fn pg_ctl_start(data: &Path, dir: &Path, port: u16) -> Result<(), String> {
    let options = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
        dir.display()
    );
    let output = pg("pg_ctl")
        .arg("-D")
        .arg(data)
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

fn pg_ctl_stop(data: &Path, mode: &str) -> Result<(), String> {
    let output = pg("pg_ctl")
        .arg("-D")
        .arg(data)
        .args(["-m", mode, "-w", "stop"])
        .output()
        .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
    if !output.status.success() {
        return Err(format!("pg_ctl stop failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(())
}

/// A PostgreSQL cluster of one test's own, which the test may stop and
/// start again (same port, same data) to see what atc makes of an outage.
/// Stopped and removed when dropped (and, should the test process die,
/// by the same watcher as the shared cluster).
pub struct DedicatedCluster {
    dir: PathBuf,
    data: PathBuf,
    pub port: u16,
}

impl DedicatedCluster {
    pub fn start() -> DedicatedCluster {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("atc-test-pg-{}-dedicated-{n}", std::process::id()));
        let port = free_port();
        let data = init_cluster(&dir).unwrap_or_else(|e| panic!("{e}"));
        pg_ctl_start(&data, &dir, port).unwrap_or_else(|e| panic!("{e}"));
        stop_when_we_exit(&data, &dir);
        DedicatedCluster { dir, data, port }
    }

    /// Settings for `database`, created if it does not exist yet.
    pub async fn database(&self, database: &str) -> PostgresSettings {
        let url = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        let admin = sqlx::PgPool::connect(&url).await.expect("connect to the dedicated cluster");
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&admin)
            .await
            .expect("look up the database");
        if !exists {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
                .execute(&admin)
                .await
                .expect("create the database");
        }
        admin.close().await;
        settings(self.port, database)
    }

    /// Stops the server as an operator's restart does (`-m fast`: clients
    /// are disconnected, transactions in flight roll back).
    pub fn stop(&self) {
        pg_ctl_stop(&self.data, "fast").unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts it again on the same port with the same data.
    pub fn start_again(&self) {
        pg_ctl_start(&self.data, &self.dir, self.port).unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for DedicatedCluster {
    fn drop(&mut self) {
        let _ = pg_ctl_stop(&self.data, "immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display(),
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
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
