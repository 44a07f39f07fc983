//! The database: the only module that contains SQL.
//!
//! One [`Db`] handle fronts either PostgreSQL (production, many atc nodes) or
//! SQLite (the embedded default). Queries are written once in the SQL both
//! engines accept (`$1` placeholders, `RETURNING`, `ON CONFLICT`) and run on
//! whichever pool is open through [`on_pool!`]; only the DDL in
//! `migrations/{postgres,sqlite}` differs.

mod artifacts;
mod build_io;
mod builds;
mod causality;
mod components;
mod encryption;
mod events;
mod jobs;
mod leases;
mod locks;
mod login_requests;
mod notifications;
mod pipelines;
mod resources;
mod scheduling;
mod spans;
mod stored;
mod task_caches;
mod teams;
mod tokens;
mod versions;
mod wall;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use artifacts::ArtifactRecord;
pub use build_io::{BuildVersion, NextInput};
pub use builds::{Build, BuildFilter, BuildPage, BuildPlan, BuildStatus, NewBuild, Page};
pub use causality::{
    CAUSALITY_MAX_BUILDS, CAUSALITY_MAX_EDGES, CausalityBuild, CausalityDirection, CausalityEdge, FlowEntry,
    HistoryEntry, VersionsDb,
};
pub use components::ComponentState;
pub use encryption::{EncryptionKey, KeyLengthError};
pub use events::{NewEvent, RecordedStep, StepRecord, StoredEvent};
pub use jobs::Job;
pub use leases::{BuildLease, TakenLease};
pub use locks::{LockGuard, LockKind};
pub use login_requests::{FinishedLogin, NewLoginRequest};
pub use notifications::Channel;
pub use pipelines::{JobSpec, Pipeline, PipelineRef, PipelineSpec, ResourceSpec, ResourceTypeSpec, SavedPipeline};
pub use resources::{Resource, ResourceType};
pub use scheduling::{HistoryVersion, SucceededWith};
pub use task_caches::{TaskCache, task_cache_key};
pub use teams::{RoleMembers, Team, TeamAuth};
pub use tokens::{AccessToken, UserActivity};
pub use versions::{ResourceVersion, VersionList, VersionOwner, VersionPage, version_digest};

use crate::telemetry::spans::DbOperation;
use encryption::Cipher;
use locks::Locks;
use notifications::Notifications;

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(sqlx::Error),
    /// The database cannot be reached (down, restarting, out of
    /// connections): nothing the caller did, worth trying again later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Encryption(String),
    #[error("the configuration was changed by someone else since version {expected} was read")]
    ConfigVersionConflict { expected: i64 },
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    Invalid(String),
    /// What the caller named was deleted meanwhile, by a concurrent request.
    #[error("{0} not found")]
    NotFound(String),
    /// A write fenced by a build's lease found the lease held by another
    /// node (or the build ended): this node must stop writing for it.
    #[error("build {build_id} is no longer run by this node (its lease was taken over or the build ended)")]
    LeaseLost { build_id: i64 },
    /// A stored value does not parse as what was written there: the row
    /// was changed outside atc or damaged.
    #[error("stored data is corrupt: column {column} of {table} row {id} {reason}")]
    CorruptRow { table: &'static str, id: i64, column: &'static str, reason: String },
}

impl DbError {
    /// Whether trying again later may succeed: the database was out of
    /// reach, or the transaction lost a race it may win next time. Errors
    /// about the statement or the data are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Unavailable(_) => true,
            DbError::Sqlx(sqlx::Error::Database(db_err)) => db_err.code().is_some_and(|code| {
                // PostgreSQL: serialization failures and deadlocks; SQLite:
                // busy and locked.
                ["40001", "40P01", "5", "6"].contains(&code.as_ref())
            }),
            DbError::Sqlx(sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed) => true,
            _ => false,
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> DbError {
        match unavailability(&err) {
            Some(reason) => DbError::Unavailable(reason),
            None => DbError::Sqlx(err),
        }
    }
}

/// Why `err` means the database cannot be reached, if it does: refused or
/// broken connections, no connection within the acquire timeout, a server
/// shutting down or starting up.
fn unavailability(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::PoolTimedOut => {
            Some("no connection was free or could be opened within --postgres-acquire-timeout".into())
        }
        sqlx::Error::PoolClosed => Some("atc is shutting down".into()),
        sqlx::Error::Io(io) => Some(io.to_string()),
        sqlx::Error::Database(db_err) => {
            let pg_err = db_err.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
            let code = pg_err.code();
            // Class 08: connection exceptions; 57P01-03: shutdown, crash,
            // still starting up; 53300: too many connections.
            (code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300"))
                .then(|| pg_err.message().to_string())
        }
        _ => None,
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// Which engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Clone)]
enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A cheap-to-clone handle on the database.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    cipher: Option<Arc<Cipher>>,
    notifications: Arc<Notifications>,
    locks: Arc<Locks>,
}

/// How to reach PostgreSQL; built from the `--postgres-*` flags.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    pub host: String,
    pub port: u16,
    pub socket: Option<std::path::PathBuf>,
    pub user: String,
    pub password: String,
    pub database: String,
    pub sslmode: String,
    pub ca_cert: Option<std::path::PathBuf>,
    /// How long start-up waits for PostgreSQL to accept connections (zero: forever).
    pub connect_timeout: Duration,
    /// How long a query waits for a connection before the database counts
    /// as unavailable: requests answer 503 instead of hanging.
    pub acquire_timeout: Duration,
    pub max_connections: u32,
}

/// Starting a transaction that will write. SQLite must take its write
/// lock up front (`BEGIN IMMEDIATE`): a deferred transaction that reads
/// then writes fails at once, without waiting, when another connection is
/// upgrading too.
pub(crate) trait WritePool {
    type Database: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>> + Send;
}

impl WritePool for PgPool {
    type Database = sqlx::Postgres;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error>> + Send {
        self.begin()
    }
}

impl WritePool for SqlitePool {
    type Database = sqlx::Sqlite;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error>> + Send {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

/// Runs `$body` with `$pool` bound to the open pool, whichever engine it is.
/// The body is compiled once per engine, so it may only use SQL both accept.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match &$db.pool {
            $crate::db::Pool::Postgres($pool) => $body,
            $crate::db::Pool::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Db {
    pub async fn connect_postgres(settings: &PostgresSettings) -> DbResult<Db> {
        let mut options = PgConnectOptions::new()
            .host(&settings.host)
            .port(settings.port)
            .database(&settings.database)
            .application_name("atc")
            .ssl_mode(PgSslMode::from_str(&settings.sslmode)?);
        if let Some(socket) = &settings.socket {
            options = options.socket(socket);
        }
        if !settings.user.is_empty() {
            options = options.username(&settings.user);
        }
        if !settings.password.is_empty() {
            options = options.password(&settings.password);
        }
        if let Some(ca_cert) = &settings.ca_cert {
            options = options.ssl_root_cert(ca_cert);
        }
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options.clone());
        wait_until_reachable(&pool, settings.connect_timeout).await?;
        let notifications = Notifications::new();
        notifications.listen_to_postgres(pool.clone());
        Ok(Db { pool: Pool::Postgres(pool), cipher: None, notifications, locks: Locks::postgres(options) })
    }

    /// Opens (creating if needed) the SQLite database file at `path`.
    pub async fn open_sqlite(path: &Path) -> DbResult<Db> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        Ok(Db {
            pool: Pool::Sqlite(pool),
            cipher: None,
            notifications: Notifications::for_sqlite(path),
            locks: Locks::in_process(),
        })
    }

    /// Encrypts configuration written from now on with `key`, and decrypts
    /// what an earlier run encrypted with it.
    pub fn with_encryption(mut self, key: Option<EncryptionKey>) -> Db {
        self.cipher = key.map(|key| Arc::new(Cipher::new(&key)));
        self
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Postgres(_) => Backend::Postgres,
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.pool {
            Pool::Postgres(_) => &POSTGRES_MIGRATIONS,
            Pool::Sqlite(_) => &SQLITE_MIGRATIONS,
        }
    }

    /// Applies every migration not yet applied, then encrypts any
    /// configuration still stored in plain text when a key is set.
    pub async fn migrate(&self) -> DbResult<()> {
        on_pool!(self, pool => self.migrator().run(pool).await)?;
        if self.cipher.is_some() {
            self.encrypt_plaintext_configs().await?;
        }
        Ok(())
    }

    /// The newest migration applied to this database, 0 for an empty one.
    pub async fn current_version(&self) -> DbResult<i64> {
        let exists: bool = on_pool!(self, pool => {
            let query = match self.backend() {
                Backend::Postgres => "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_name = '_sqlx_migrations')",
                Backend::Sqlite => "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
            };
            sqlx::query_scalar(query).fetch_one(pool).await
        })?;
        if !exists {
            return Ok(0);
        }
        let version: Option<i64> = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success"
        ).fetch_one(pool).await)?;
        Ok(version.unwrap_or(0))
    }

    /// The newest migration this build of atc knows.
    pub fn supported_version(&self) -> i64 {
        newest(self.migrator())
    }

    /// [`Db::supported_version`] for PostgreSQL, without connecting.
    pub fn supported_postgres_version() -> i64 {
        newest(&POSTGRES_MIGRATIONS)
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// Seals `plaintext` when a key is set: returns what to store and its nonce.
    fn seal(&self, plaintext: &str) -> DbResult<(String, Option<String>)> {
        match &self.cipher {
            Some(cipher) => {
                let (ciphertext, nonce) = cipher.encrypt(plaintext)?;
                Ok((ciphertext, Some(nonce)))
            }
            None => Ok((plaintext.to_string(), None)),
        }
    }

    /// Opens what [`Db::seal`] stored.
    fn open(&self, stored: String, nonce: Option<String>) -> DbResult<String> {
        match (nonce, &self.cipher) {
            (None, _) => Ok(stored),
            (Some(nonce), Some(cipher)) => cipher.decrypt(&stored, &nonce),
            (Some(_), None) => {
                Err(DbError::Encryption("configuration is encrypted but no --encryption-key was given".into()))
            }
        }
    }

    async fn encrypt_plaintext_configs(&self) -> DbResult<()> {
        for table in ["pipelines", "jobs", "resources", "resource_types"] {
            let rows: Vec<(i64, String)> = on_pool!(self, pool => sqlx::query_as(
                AssertSqlSafe(format!("SELECT id, config FROM {table} WHERE nonce IS NULL"))
            ).fetch_all(pool).await)?;
            for (id, config) in rows {
                let (sealed, nonce) = self.seal(&config)?;
                on_pool!(self, pool => sqlx::query(
                    AssertSqlSafe(format!("UPDATE {table} SET config = $1, nonce = $2 WHERE id = $3 AND nonce IS NULL"))
                ).bind(&sealed).bind(&nonce).bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
            }
        }
        Ok(())
    }
}

/// Waits for PostgreSQL to accept connections, for up to `patience` (zero:
/// forever), as it may be starting alongside atc. Any other failure, a
/// wrong password or a missing database, ends the wait at once.
async fn wait_until_reachable(pool: &PgPool, patience: Duration) -> DbResult<()> {
    let started = std::time::Instant::now();
    loop {
        match pool.acquire().await.map_err(DbError::from) {
            Ok(_) => return Ok(()),
            Err(DbError::Unavailable(reason)) if patience.is_zero() || started.elapsed() < patience => {
                tracing::warn!(%reason, "waiting for PostgreSQL to accept connections");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(err) => return Err(err),
        }
    }
}

fn newest(migrator: &sqlx::migrate::Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Current time as unix seconds, the unit every timestamp column uses.
pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Maps a unique-constraint violation to [`DbError::AlreadyExists`].
pub(crate) fn unique_violation(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> DbError {
    move |err| match &err {
        sqlx::Error::Database(db_err) if db_err.is_unique_violation() => DbError::AlreadyExists(what.into()),
        _ => DbError::from(err),
    }
}

/// Maps a foreign-key violation, a row inserted under a parent that a
/// concurrent request deleted, to [`DbError::NotFound`] naming the parent.
pub(crate) fn parent_deleted(parent: impl Into<String>) -> impl FnOnce(sqlx::Error) -> DbError {
    move |err| match &err {
        sqlx::Error::Database(db_err) if db_err.is_foreign_key_violation() => DbError::NotFound(parent.into()),
        _ => DbError::from(err),
    }
}

impl Db {
    /// Wakes whoever listens on `channel`, on every atc node.
    pub async fn notify(&self, channel: Channel, payload: &str) -> DbResult<()> {
        match &self.pool {
            Pool::Postgres(pool) => {
                sqlx::query("SELECT pg_notify($1, $2)").bind(channel.name()).bind(payload).execute(pool).await?;
            }
            Pool::Sqlite(_) => self.notifications.deliver(channel, payload),
        }
        Ok(())
    }

    pub fn subscribe(&self, channel: Channel) -> tokio::sync::broadcast::Receiver<String> {
        self.notifications.subscribe(channel)
    }

    /// Takes the lock on (`kind`, `id`) unless this or another node holds it.
    pub async fn try_lock(&self, kind: LockKind, id: i64) -> DbResult<Option<LockGuard>> {
        let mut span = self.operation_span(DbOperation::AcquireLock);
        let locked = self.locks.try_lock(kind, id).await;
        span.record_lock(kind.name(), matches!(locked, Ok(Some(_))));
        span.end(&locked);
        locked
    }

    /// Checks that the database answers a query.
    pub async fn ping(&self) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
