//! Starting and stopping the server: migrations, the main team, the HTTP
//! listener, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState, Settings};
use crate::auth::{LocalUser, LocalUsers, TokenService, roles::MAIN_TEAM};
use crate::component;
use crate::creds::{CredentialManager, Managed, SecretPolicy};
use crate::db::{Db, DbError, EncryptionKey, RoleMembers, TeamAuth};
use crate::engine::Engine;
use crate::engine::tracker::LeaseSettings;
use crate::gc::{ARTIFACT_TTL, Collector};
use crate::lidar::Checker;
use crate::runtime::{Runtime, UploadLimits};
use crate::scheduler::Scheduler;

/// How often the collector removes what nothing needs any more.
const COLLECTOR_INTERVAL: Duration = Duration::from_secs(30);

/// How often the scheduler looks at every job (it is also woken by new
/// versions, finished builds and triggers).
const SCHEDULER_INTERVAL: Duration = Duration::from_secs(10);

/// How often the checker looks for resources due for a check.
const CHECKER_INTERVAL: Duration = Duration::from_secs(10);

/// How often the build tracker looks for builds to run (it is also woken
/// whenever one is ready).
const TRACKER_INTERVAL: Duration = Duration::from_secs(10);
use crate::metric::{MetricsEndpoint, PrometheusOptions};

/// Why the server could not start, or did not stop cleanly. What is wrong
/// is in the message; the cause it comes from is the error's source.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot migrate the database")]
    Migrate(#[source] DbError),
    #[error("the main team has no owner: set --main-team-local-user")]
    NoMainTeamOwner,
    #[error("cannot release the build leases of earlier runs")]
    ReleaseLeases(#[source] DbError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} for Prometheus (--prometheus-bind-ip, --prometheus-bind-port)")]
    ListenPrometheus {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Accepting or serving connections failed.
    #[error(transparent)]
    Serve(std::io::Error),
    #[error("server task panicked")]
    Panicked(#[source] tokio::task::JoinError),
    #[error("Prometheus listener failed")]
    Prometheus(#[source] std::io::Error),
}

/// Everything the server needs besides its database.
#[derive(Clone)]
pub struct ServerOptions {
    /// Where steps run.
    pub runtime: Arc<dyn Runtime>,
    /// Where `((vars))` get their values.
    pub credentials: Arc<dyn CredentialManager>,
    /// The secret cache and retries around it (and around var sources).
    pub secret_policy: SecretPolicy,
    /// `--enable-redact-secrets`: builds show `((redacted))` for their secrets.
    pub redact_secrets: bool,
    pub bind: SocketAddr,
    /// Where to serve Prometheus `/metrics`; `None` serves nothing.
    pub prometheus: Option<PrometheusOptions>,
    /// Defaults to `http://<bind address>`.
    pub external_url: Option<String>,
    pub cluster_name: String,
    pub local_users: Vec<LocalUser>,
    /// Local users who own the main team (and so administer atc).
    pub main_team_users: Vec<String>,
    pub auth_duration: Duration,
    pub cookie_secure: bool,
    pub encryption_key: Option<EncryptionKey>,
    /// How often resources without `check_every` are checked.
    pub resource_checking_interval: Duration,
    /// How often resource types without `check_every` are checked.
    pub resource_type_checking_interval: Duration,
    /// How long this node's lease on a running build lasts without renewal.
    pub build_lease_duration: Duration,
    /// How large a `fly execute` upload may be.
    pub upload_limits: UploadLimits,
    /// `--tracing-ui-url`: build pages link to their trace.
    pub trace_link: Option<crate::ui::trace_link::TraceLinkTemplate>,
}

/// A server accepting requests until [`RunningServer::stop`].
pub struct RunningServer {
    pub addr: SocketAddr,
    pub external_url: String,
    /// Runs builds; its hub fans build events out to watchers.
    pub engine: Arc<Engine>,
    /// The Prometheus listener's address, when there is one.
    pub prometheus_addr: Option<SocketAddr>,
    metrics: Option<MetricsEndpoint>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    /// Stops the background components.
    components: CancellationToken,
    component_tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting, lets requests in flight finish, and waits.
    pub async fn stop(self) -> Result<(), ServerError> {
        let _ = self.stop.send(());
        self.task.await.map_err(ServerError::Panicked)?.map_err(ServerError::Serve)?;
        if let Some(metrics) = self.metrics {
            metrics.stop().await.map_err(ServerError::Prometheus)?;
        }
        self.components.cancel();
        for task in self.component_tasks {
            let _ = task.await;
        }
        self.engine.stop().await;
        Ok(())
    }
}

/// Prepares the database and starts serving on `options.bind`.
pub async fn start(db: Db, options: ServerOptions) -> Result<RunningServer, ServerError> {
    let db = db.with_encryption(options.encryption_key.clone());
    db.migrate().await.map_err(ServerError::Migrate)?;
    configure_main_team(&db, &options).await?;

    let listener =
        TcpListener::bind(options.bind).await.map_err(|source| ServerError::Listen { addr: options.bind, source })?;
    let addr = listener.local_addr().map_err(ServerError::Serve)?;
    let external_url = options.external_url.clone().unwrap_or_else(|| {
        let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
        format!("http://{}", SocketAddr::new(host.parse().unwrap_or(addr.ip()), addr.port()))
    });
    db.expire_leases_of_previous_runs().await.map_err(ServerError::ReleaseLeases)?;
    let leases = LeaseSettings::for_this_process(options.build_lease_duration);
    let credentials = Arc::new(Managed::new(options.credentials.clone(), options.secret_policy));
    let engine = Engine::new(
        db.clone(),
        options.runtime.clone(),
        external_url.clone(),
        credentials,
        options.secret_policy,
        options.redact_secrets,
        leases,
    );
    let state = AppState {
        engine: engine.clone(),
        tokens: TokenService::new(db.clone(), options.auth_duration),
        db,
        users: Arc::new(LocalUsers::new(options.local_users.clone())),
        settings: Arc::new(Settings {
            external_url: external_url.clone(),
            cluster_name: options.cluster_name.clone(),
            upload_limits: options.upload_limits,
            trace_link: options.trace_link.clone(),
        }),
        cookie_secure: options.cookie_secure,
    };
    let components = CancellationToken::new();
    let mut component_tasks = vec![component::spawn(
        Arc::new(Collector::new(state.db.clone(), options.runtime.clone(), ARTIFACT_TTL)),
        state.db.clone(),
        COLLECTOR_INTERVAL,
        components.clone(),
    )];
    // A build whose node is gone waits for its lease to run out, then at
    // most one tracker interval more.
    let tracker_interval = TRACKER_INTERVAL.min(options.build_lease_duration / 2);
    component_tasks.extend(engine.spawn(tracker_interval, components.clone()));
    component_tasks.push(component::spawn(
        Arc::new(Scheduler::new(state.db.clone())),
        state.db.clone(),
        SCHEDULER_INTERVAL,
        components.clone(),
    ));
    component_tasks.push(component::spawn(
        Arc::new(Checker::new(
            state.db.clone(),
            options.resource_checking_interval,
            options.resource_type_checking_interval,
        )),
        state.db.clone(),
        CHECKER_INTERVAL,
        components.clone(),
    ));
    let metrics = match &options.prometheus {
        Some(prometheus) => Some(
            MetricsEndpoint::start(prometheus)
                .await
                .map_err(|source| ServerError::ListenPrometheus { addr: prometheus.bind, source })?,
        ),
        None => None,
    };
    let prometheus_addr = metrics.as_ref().map(|m| m.addr);
    // The peer address becomes the request span's client.address.
    let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let (stop, stopped) = oneshot::channel::<()>();
    // Without TCP_NODELAY, an event stream's small frames wait for the
    // client's delayed ACK (40 ms each on Linux) before they leave.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(RunningServer { addr, external_url, engine, prometheus_addr, metrics, stop, task, components, component_tasks })
}

/// Runs until `shutdown` completes.
pub async fn serve(db: Db, options: ServerOptions, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    let server = start(db, options).await?;
    tracing::info!(address = %server.addr, external_url = %server.external_url, "atc is listening");
    if let Some(prometheus) = server.prometheus_addr {
        tracing::info!(address = %prometheus, "serving Prometheus metrics at /metrics");
    }
    shutdown.await;
    tracing::info!("shutting down");
    server.stop().await
}

/// Gives the main team's owner role to the configured local users.
async fn configure_main_team(db: &Db, options: &ServerOptions) -> Result<(), ServerError> {
    if options.main_team_users.is_empty() {
        if db.find_team(MAIN_TEAM).await?.is_none() {
            return Err(ServerError::NoMainTeamOwner);
        }
        return Ok(());
    }
    for user in &options.main_team_users {
        if !options.local_users.iter().any(|u| &u.username == user) {
            tracing::warn!(user, "main team owner is not a local user (--add-local-user); they cannot log in");
        }
    }
    let mut auth = TeamAuth::new();
    auth.insert(
        "owner".into(),
        RoleMembers { users: options.main_team_users.iter().map(|u| format!("local:{u}")).collect(), groups: vec![] },
    );
    db.save_team(MAIN_TEAM, &auth).await?;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a signal that arrives while
/// the server is still starting (a test's or an orchestrator's quick stop)
/// must stop it, not kill it.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                // Without handlers the default action (exit) stands.
                _ => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
