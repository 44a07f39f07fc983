//! Shared test harness: real databases of both kinds, a real server on a
//! loopback port, and an HTTP client that talks to it the way `fly` does.

#![allow(dead_code)]

pub mod browser;
pub mod control_plane;
pub mod credhub;
pub mod moto;
pub mod on_exit;
pub mod openbao;
pub mod postgres;
pub mod secrets;

/// The checkout under test, read when the test runs: the build cache is
/// shared between clones, so a path baked in at compile time can name a
/// clone that is gone.
pub fn source_root() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("tests run under cargo, which sets CARGO_MANIFEST_DIR"))
}

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use atc::auth::LocalUser;
use atc::db::Db;
use atc::runtime::Runtime;
use atc::runtime::local::{LocalRuntime, LocalRuntimeOptions};
use atc::server::{RunningServer, ServerOptions};
use serde_json::Value;

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for an `async fn(Backend)`
/// (or `async fn(On)`: the backend with the local runtime).
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario($crate::support::Backend::Sqlite.into()).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario($crate::support::Backend::Postgres.into()).await
                }
            }
        )+
    };
}

/// What a scenario's server runs on: a database of its own, and the
/// runtime given (the Kubernetes runtime on the test cluster, say) or else
/// a local runtime of its own. The same scenario code runs on either.
#[derive(Clone)]
pub struct On {
    pub backend: Backend,
    pub runtime: Option<Arc<dyn Runtime>>,
}

impl From<Backend> for On {
    fn from(backend: Backend) -> On {
        On { backend, runtime: None }
    }
}

/// A database of the given kind, empty and used by this test alone.
pub struct TestDb {
    pub db: Db,
    /// Keeps the SQLite file alive for as long as the test runs.
    _dir: Option<tempfile::TempDir>,
    pub sqlite_path: Option<PathBuf>,
    pub postgres: Option<atc::db::PostgresSettings>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("atc.db");
                let db = Db::open_sqlite(&path).await.expect("open sqlite");
                TestDb { db, _dir: Some(dir), sqlite_path: Some(path), postgres: None }
            }
            Backend::Postgres => {
                let settings = postgres::fresh_database().await;
                let db = Db::connect_postgres(&settings).await.expect("connect postgres");
                TestDb { db, _dir: None, sqlite_path: None, postgres: Some(settings) }
            }
        }
    }

    /// Runs a `SELECT COUNT(*) ...` directly, bypassing atc.
    pub async fn count(&self, sql: &'static str) -> i64 {
        match (&self.sqlite_path, &self.postgres) {
            (Some(path), _) => {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
            }
            (_, Some(pg)) => sqlx::query_scalar(sql).fetch_one(&self.raw_postgres(pg).await).await.unwrap(),
            _ => unreachable!("a test database is SQLite or PostgreSQL"),
        }
    }

    /// Runs a query returning one text column directly, bypassing atc.
    pub async fn strings(&self, sql: &'static str) -> Vec<String> {
        match (&self.sqlite_path, &self.postgres) {
            (Some(path), _) => {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
                sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap()
            }
            (_, Some(pg)) => sqlx::query_scalar(sql).fetch_all(&self.raw_postgres(pg).await).await.unwrap(),
            _ => unreachable!("a test database is SQLite or PostgreSQL"),
        }
    }

    /// Runs a statement answering one number (`SELECT id ...`, `UPDATE ... RETURNING id`)
    /// directly, bypassing atc: how tests damage what atc stored.
    pub async fn scalar(&self, sql: &'static str) -> i64 {
        self.count(sql).await
    }

    async fn raw_postgres(&self, pg: &atc::db::PostgresSettings) -> sqlx::PgPool {
        let url = format!("postgres://{}@{}:{}/{}", pg.user, pg.host, pg.port, pg.database);
        sqlx::PgPool::connect(&url).await.unwrap()
    }

    /// A migrated database.
    pub async fn migrated(backend: Backend) -> TestDb {
        let test_db = TestDb::new(backend).await;
        test_db.db.migrate().await.expect("migrate");
        test_db
    }
}

pub const ADMIN: (&str, &str) = ("admin", "admin-password");

/// A local runtime in a temporary work dir (kept alive by the returned
/// guard), running built-in resource types from the `atc` binary under test.
pub async fn local_runtime() -> (Arc<dyn Runtime>, tempfile::TempDir) {
    local_runtime_with_types(None).await
}

/// [`local_runtime`] with `--resource-types-dir` set.
pub async fn local_runtime_with_types(types_dir: Option<PathBuf>) -> (Arc<dyn Runtime>, tempfile::TempDir) {
    let work = tempfile::tempdir().expect("work dir");
    let mut options = LocalRuntimeOptions::new(work.path().to_path_buf());
    options.resource_types_dir = types_dir;
    options.atc_executable = Some(PathBuf::from(env!("CARGO_BIN_EXE_atc")));
    options.stop_grace_period = Duration::from_secs(2);
    let runtime = LocalRuntime::new(options).await.expect("local runtime");
    (Arc::new(runtime), work)
}

/// Options for a server on a random loopback port whose main team is owned
/// by [`ADMIN`], plus the extra users given, running steps on `runtime`.
pub fn server_options_with(runtime: Arc<dyn Runtime>, extra_users: &[(&str, &str)]) -> ServerOptions {
    let mut local_users = vec![LocalUser::new(ADMIN.0, ADMIN.1)];
    local_users.extend(extra_users.iter().map(|(u, p)| LocalUser::new(u, p)));
    ServerOptions {
        runtime,
        credentials: Arc::new(atc::creds::Dummy::new(
            [("greeting".to_string(), serde_json::json!("hello from creds"))].into_iter().collect(),
        )),
        secret_policy: atc::creds::SecretPolicy::default(),
        redact_secrets: true,
        bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        prometheus: None,
        external_url: None,
        cluster_name: "test".into(),
        local_users,
        main_team_users: vec![ADMIN.0.into()],
        auth_duration: Duration::from_secs(3600),
        cookie_secure: false,
        encryption_key: None,
        resource_checking_interval: Duration::from_secs(60),
        resource_type_checking_interval: Duration::from_secs(60),
        build_lease_duration: Duration::from_secs(30),
        upload_limits: atc::runtime::UploadLimits { max_compressed_bytes: 1 << 30, max_unpacked_bytes: 4 << 30 },
        trace_link: None,
    }
}

/// A running server and a client for it.
pub struct TestServer {
    pub url: String,
    pub engine: Arc<atc::engine::Engine>,
    /// Where the server runs steps (the engine keeps it to itself).
    pub runtime: Arc<dyn Runtime>,
    /// The runtime's work dir, removed when the server is dropped.
    _work: Option<tempfile::TempDir>,
    pub server: Option<RunningServer>,
    pub test_db: TestDb,
    pub http: reqwest::Client,
}

impl TestServer {
    pub async fn start(on: impl Into<On>) -> TestServer {
        TestServer::start_with_users(on, &[]).await
    }

    /// A server whose extra local users are `users` (name, password).
    pub async fn start_with_users(on: impl Into<On>, users: &[(&str, &str)]) -> TestServer {
        let On { backend, runtime } = on.into();
        if let Some(runtime) = runtime {
            return TestServer::start_with(backend, server_options_with(runtime, users)).await;
        }
        let (runtime, work) = local_runtime().await;
        let mut server = TestServer::start_with(backend, server_options_with(runtime, users)).await;
        server._work = Some(work);
        server
    }

    /// A server whose runtime also runs the resource types under `types_dir`.
    pub async fn start_with_resource_types(backend: Backend, types_dir: &Path) -> TestServer {
        TestServer::start_with_resource_types_and_users(backend, types_dir, &[]).await
    }

    /// A server with both extra resource types and extra local users.
    pub async fn start_with_resource_types_and_users(
        backend: Backend,
        types_dir: &Path,
        users: &[(&str, &str)],
    ) -> TestServer {
        let (runtime, work) = local_runtime_with_types(Some(types_dir.to_path_buf())).await;
        let mut server = TestServer::start_with(backend, server_options_with(runtime, users)).await;
        server._work = Some(work);
        server
    }

    pub async fn start_with(backend: Backend, options: ServerOptions) -> TestServer {
        TestServer::start_on(TestDb::new(backend).await, options).await
    }

    /// A server (local runtime, [`ADMIN`] owning main) on the PostgreSQL
    /// database `settings` name, a [`postgres::DedicatedPostgres`]'s say.
    pub async fn start_on_postgres(settings: atc::db::PostgresSettings) -> TestServer {
        let db = Db::connect_postgres(&settings).await.expect("connect postgres");
        let test_db = TestDb { db, _dir: None, sqlite_path: None, postgres: Some(settings) };
        let (runtime, work) = local_runtime().await;
        let mut server = TestServer::start_on(test_db, server_options_with(runtime, &[])).await;
        server._work = Some(work);
        server
    }

    async fn start_on(test_db: TestDb, options: ServerOptions) -> TestServer {
        let runtime = options.runtime.clone();
        let server = atc::server::start(test_db.db.clone(), options).await.expect("server starts");
        TestServer {
            url: server.external_url.clone(),
            engine: server.engine.clone(),
            runtime,
            _work: None,
            server: Some(server),
            test_db,
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        }
    }

    /// How many artifacts the local runtime holds, once that number is
    /// `expected` (release happens just after a build finishes); panics
    /// after 10 s with the number it saw.
    pub async fn wait_for_artifact_count(&self, expected: usize) {
        let dir = self._work.as_ref().expect("a server with a local runtime").path().join("artifacts");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let count = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
            if count == expected {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{count} artifacts in the work dir, expected {expected}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the local runtime holds `expected` task caches; panics
    /// after 10 s with the number it saw.
    pub async fn wait_for_cache_count(&self, expected: usize) {
        let dir = self._work.as_ref().expect("a server with a local runtime").path().join("caches");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let count = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
            if count == expected {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{count} caches in the work dir, expected {expected}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("server stops cleanly");
        }
    }

    /// Logs in as `fly login -u -p` does and returns the access token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let response = self.password_grant(username, password).await;
        assert_eq!(response.status(), 200, "login as {username} should succeed");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().expect("access_token").to_string()
    }

    pub async fn password_grant(&self, username: &str, password: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/sky/issuer/token", self.url))
            .basic_auth("fly", Some("Zmx5"))
            .form(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
                ("scope", "openid profile email federated:id groups"),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN.0, ADMIN.1).await
    }

    pub fn request(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.url));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.request(reqwest::Method::GET, path, token).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str, token: Option<&str>) -> Value {
        let response = self.get(path, token).await;
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().await.unwrap()
    }

    pub async fn put_json(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        self.request(reqwest::Method::PUT, path, token).json(body).send().await.unwrap()
    }

    /// `fly set-pipeline`: PUT the YAML config, returning the response.
    pub async fn set_pipeline(&self, token: &str, team: &str, name: &str, yaml: &str) -> reqwest::Response {
        self.request(reqwest::Method::PUT, &format!("/api/v1/teams/{team}/pipelines/{name}/config"), Some(token))
            .header("Content-Type", "application/x-yaml")
            .body(yaml.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Creates a team whose `role` is held by `user`.
    pub async fn set_team(&self, admin_token: &str, team: &str, role: &str, user: &str) {
        let body = serde_json::json!({ "auth": { role: { "users": [format!("local:{user}")], "groups": [] } } });
        let response = self.put_json(&format!("/api/v1/teams/{team}"), Some(admin_token), &body).await;
        assert!(response.status().is_success(), "set team {team}: {}", response.status());
    }
}

/// A gzipped tarball holding `files` (path, contents), as `fly execute` uploads.
pub fn tgz(files: &[(&str, &str)]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut archive = tar::Builder::new(encoder);
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        archive.append_data(&mut header, path, contents.as_bytes()).expect("tar entry");
    }
    archive.into_inner().expect("tar").finish().expect("gzip")
}

/// A build's events, read from its event stream until `end`.
pub struct Watched {
    pub events: Vec<Value>,
}

impl Watched {
    /// Everything the build printed, in order.
    pub fn log(&self) -> String {
        self.events
            .iter()
            .filter(|e| e["event"] == "log")
            .map(|e| e["data"]["payload"].as_str().unwrap_or(""))
            .collect()
    }

    /// What `fly watch` prints of the build: its log, with each error
    /// message on a line of its own where it happened.
    pub fn output(&self) -> String {
        let mut output = String::new();
        for event in &self.events {
            if event["event"] == "log" {
                output.push_str(event["data"]["payload"].as_str().unwrap_or(""));
            } else if event["event"] == "error" {
                output.push_str(event["data"]["message"].as_str().unwrap_or(""));
                output.push('\n');
            }
        }
        output
    }

    pub fn status(&self) -> String {
        self.events
            .iter()
            .rev()
            .find(|e| e["event"] == "status")
            .and_then(|e| e["data"]["status"].as_str())
            .unwrap_or("")
            .to_string()
    }

    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == kind).collect()
    }
}

impl TestServer {
    /// Follows a build's events to the end, as `fly watch` does (deadline 60 s).
    pub async fn watch(&self, token: &str, build_id: i64) -> Watched {
        use futures_util::StreamExt;
        let response = self.get(&format!("/api/v1/builds/{build_id}/events"), Some(token)).await;
        assert_eq!(response.status(), 200, "events of build {build_id}");
        let mut stream = response.bytes_stream();
        let mut text = String::new();
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let chunk = tokio::time::timeout_at(deadline, stream.next()).await.expect("the build ends in time");
            let Some(Ok(chunk)) = chunk else { break };
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let frame: String = text.drain(..end + 2).collect();
                if frame.contains("event: end") {
                    return Watched { events };
                }
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                    events.push(serde_json::from_str(data).expect("event JSON"));
                }
            }
        }
        Watched { events }
    }

    /// `fly execute`: a one-off build of `plan`; returns the build's id.
    pub async fn execute(&self, token: &str, plan: &Value) -> i64 {
        let response = self
            .request(reqwest::Method::POST, "/api/v1/teams/main/builds", Some(token))
            .json(plan)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }
}

impl TestServer {
    /// Polls `path` until `ready` accepts its JSON (deadline 60 s).
    pub async fn wait_for(&self, token: &str, path: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let response = self.get(path, Some(token)).await;
            if response.status().is_success() {
                let value: Value = response.json().await.unwrap();
                if ready(&value) {
                    return value;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `fly set-pipeline` + `fly unpause-pipeline` of a pipeline of team main.
    pub async fn set_and_unpause(&self, token: &str, name: &str, yaml: &str) {
        let response = self.set_pipeline(token, "main", name, yaml).await;
        assert!(response.status().is_success(), "set {name}: {}", response.text().await.unwrap());
        let unpause = self
            .request(reqwest::Method::PUT, &format!("/api/v1/teams/main/pipelines/{name}/unpause"), Some(token))
            .send()
            .await
            .unwrap();
        assert_eq!(unpause.status(), 200);
    }

    /// `fly trigger-job -w`: returns the watched build and its id.
    pub async fn trigger_and_watch(&self, token: &str, pipeline: &str, job: &str) -> (i64, Watched) {
        let response = self
            .request(
                reqwest::Method::POST,
                &format!("/api/v1/teams/main/pipelines/{pipeline}/jobs/{job}/builds"),
                Some(token),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "trigger {pipeline}/{job}");
        let id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        (id, self.watch(token, id).await)
    }
}

/// A second atc node serving the same database as a [`TestServer`], with a
/// runtime of its own: on PostgreSQL a pool of its own, as a second `atc
/// web` has; on SQLite the same file (enough for API traffic, but its
/// components take in-process locks, so they do not coordinate with the
/// first node's).
pub struct Node {
    pub url: String,
    server: Option<RunningServer>,
    _work: tempfile::TempDir,
}

impl TestServer {
    pub async fn start_another_node(&self) -> Node {
        let db = match (&self.test_db.sqlite_path, &self.test_db.postgres) {
            (Some(path), _) => Db::open_sqlite(path).await.expect("open sqlite"),
            (_, Some(settings)) => Db::connect_postgres(settings).await.expect("connect postgres"),
            _ => unreachable!("a test database is SQLite or PostgreSQL"),
        };
        let (runtime, work) = local_runtime().await;
        let server = atc::server::start(db, server_options_with(runtime, &[])).await.expect("second node starts");
        Node { url: server.external_url.clone(), server: Some(server), _work: work }
    }
}

impl Node {
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("node stops cleanly");
        }
    }
}
