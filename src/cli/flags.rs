//! Flag groups shared by the server commands. Names, defaults and
//! `CONCOURSE_*` variables follow Concourse so existing deployments keep
//! their configuration.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::auth::LocalUser;
use crate::db::EncryptionKey;

/// Flags of everything that serves the API: `web` and `quickstart`.
#[derive(Debug, Clone, Args)]
pub struct ServerFlags {
    /// IP address on which to listen for web traffic [web: 0.0.0.0, quickstart: 127.0.0.1].
    #[arg(long, env = "CONCOURSE_BIND_IP", value_name = "IP")]
    pub bind_ip: Option<IpAddr>,

    /// Port on which to listen for HTTP traffic.
    #[arg(long, env = "CONCOURSE_BIND_PORT", default_value_t = 8080, value_name = "PORT")]
    pub bind_port: u16,

    /// URL used to reach atc from the outside world [default: http://<bind-ip>:<bind-port>].
    #[arg(long, env = "CONCOURSE_EXTERNAL_URL", value_parser = parse_external_url, value_name = "URL")]
    pub external_url: Option<String>,

    /// A name for this cluster, shown in the UI and returned by /api/v1/info.
    #[arg(long, env = "CONCOURSE_CLUSTER_NAME", default_value = "", value_name = "NAME")]
    pub cluster_name: String,

    /// Minimum level of logs to print: debug, info, warn, error.
    #[arg(long, env = "CONCOURSE_LOG_LEVEL", default_value = "info", value_parser = parse_log_level, value_name = "LEVEL")]
    pub log_level: String,

    #[command(flatten)]
    pub auth: AuthFlags,

    #[command(flatten)]
    pub encryption: EncryptionFlags,

    #[command(flatten)]
    pub runtime: RuntimeFlags,

    #[command(flatten)]
    pub credentials: CredentialFlags,
}

/// Where `((vars))` of pipelines get their values.
#[derive(Debug, Clone, Args)]
pub struct CredentialFlags {
    /// A var for the `dummy` credential manager, as KEY:VALUE. Repeatable, or comma-separated.
    #[arg(long, env = "CONCOURSE_DUMMY_CREDS_VAR", hide_env_values = true, value_delimiter = ',', value_parser = crate::creds::Dummy::parse_flag, value_name = "KEY:VALUE")]
    pub dummy_creds_var: Vec<(String, String)>,
}

impl CredentialFlags {
    pub fn manager(&self) -> std::sync::Arc<dyn crate::creds::CredentialManager> {
        if self.dummy_creds_var.is_empty() {
            return std::sync::Arc::new(crate::creds::NoCredentials);
        }
        let vars =
            self.dummy_creds_var.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        std::sync::Arc::new(crate::creds::Dummy::new(vars))
    }
}

/// Where and how the local runtime runs steps.
#[derive(Debug, Clone, Args)]
pub struct RuntimeFlags {
    /// Where the local runtime keeps step work dirs, artifacts and caches [quickstart: <data-dir>/work, web: $XDG_DATA_HOME/atc/work or ~/.local/share/atc/work].
    #[arg(long, env = "CONCOURSE_WORK_DIR", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// Resource types as executables: DIR/TYPE/{check,in,out} is resource type TYPE (it wins over a built-in type of that name).
    #[arg(long, env = "CONCOURSE_RESOURCE_TYPES_DIR", value_name = "DIR")]
    pub resource_types_dir: Option<PathBuf>,
}

impl RuntimeFlags {
    /// The local runtime's options, with `default_work_dir` unless `--work-dir` is given.
    pub fn local_runtime_options(&self, default_work_dir: PathBuf) -> crate::runtime::local::LocalRuntimeOptions {
        let mut options =
            crate::runtime::local::LocalRuntimeOptions::new(self.work_dir.clone().unwrap_or(default_work_dir));
        options.resource_types_dir = self.resource_types_dir.clone();
        options
    }
}

/// `$XDG_DATA_HOME/atc`, else `~/.local/share/atc`.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("atc"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or_else(|| {
        anyhow::anyhow!("cannot find a data directory: set --data-dir or --work-dir (HOME is not set)")
    })?;
    Ok(PathBuf::from(home).join(".local/share/atc"))
}

/// Creates the local runtime, failing start-up with the flag to fix.
pub async fn start_local_runtime(
    flags: &RuntimeFlags,
    default_work_dir: PathBuf,
) -> anyhow::Result<crate::runtime::local::LocalRuntime> {
    let options = flags.local_runtime_options(default_work_dir);
    let work_dir = options.work_dir.clone();
    let runtime = crate::runtime::local::LocalRuntime::new(options)
        .await
        .map_err(|err| anyhow::anyhow!("--work-dir / --resource-types-dir: {err}"))?;
    tracing::info!(work_dir = %work_dir.display(), resource_types = ?runtime.resource_types(), "local runtime ready");
    Ok(runtime)
}

#[derive(Debug, Clone, Args)]
pub struct AuthFlags {
    /// A local user as USERNAME:PASSWORD; the password may be a bcrypt hash. Repeatable, or comma-separated.
    #[arg(long, env = "CONCOURSE_ADD_LOCAL_USER", hide_env_values = true, value_delimiter = ',', value_parser = LocalUser::parse_flag, value_name = "USERNAME:PASSWORD")]
    pub add_local_user: Vec<LocalUser>,

    /// A local user who owns the `main` team (and so administers atc). Repeatable, or comma-separated.
    #[arg(long, env = "CONCOURSE_MAIN_TEAM_LOCAL_USER", value_delimiter = ',', value_name = "USERNAME")]
    pub main_team_local_user: Vec<String>,

    /// How long access tokens stay valid.
    #[arg(long, env = "CONCOURSE_AUTH_DURATION", default_value = "24h", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub auth_duration: Duration,

    /// Mark session cookies Secure (set this when atc is served over HTTPS).
    #[arg(long, env = "CONCOURSE_COOKIE_SECURE")]
    pub cookie_secure: bool,
}

#[derive(Debug, Clone, Args)]
pub struct EncryptionFlags {
    /// A 16 or 32 byte key that encrypts pipeline configuration at rest (AES-GCM).
    #[arg(long, env = "CONCOURSE_ENCRYPTION_KEY", hide_env_values = true, value_parser = EncryptionKey::parse_flag, value_name = "KEY")]
    pub encryption_key: Option<EncryptionKey>,
}

/// Where the PostgreSQL database lives (`web` and `migrate`).
#[derive(Debug, Clone, Args)]
pub struct PostgresFlags {
    /// The host to connect to.
    #[arg(long, env = "CONCOURSE_POSTGRES_HOST", default_value = "127.0.0.1", value_name = "HOST")]
    pub postgres_host: String,

    /// The port to connect to.
    #[arg(long, env = "CONCOURSE_POSTGRES_PORT", default_value_t = 5432, value_name = "PORT")]
    pub postgres_port: u16,

    /// Path to a UNIX domain socket directory to connect through instead of TCP.
    #[arg(long, env = "CONCOURSE_POSTGRES_SOCKET", value_name = "PATH")]
    pub postgres_socket: Option<PathBuf>,

    /// The user to sign in as.
    #[arg(long, env = "CONCOURSE_POSTGRES_USER", default_value = "", value_name = "USER")]
    pub postgres_user: String,

    /// The user's password.
    #[arg(
        long,
        env = "CONCOURSE_POSTGRES_PASSWORD",
        hide_env_values = true,
        default_value = "",
        value_name = "PASSWORD"
    )]
    pub postgres_password: String,

    /// The name of the database to use.
    #[arg(long, env = "CONCOURSE_POSTGRES_DATABASE", default_value = "atc", value_name = "NAME")]
    pub postgres_database: String,

    /// Whether or not to use SSL: disable, require, verify-ca, verify-full.
    #[arg(long, env = "CONCOURSE_POSTGRES_SSLMODE", default_value = "disable", value_parser = ["disable", "require", "verify-ca", "verify-full"], value_name = "MODE")]
    pub postgres_sslmode: String,

    /// CA certificate file to verify the server with when connecting with SSL.
    #[arg(long, env = "CONCOURSE_POSTGRES_CA_CERT", value_name = "FILE")]
    pub postgres_ca_cert: Option<PathBuf>,

    /// Dialing timeout (0 waits indefinitely).
    #[arg(long, env = "CONCOURSE_POSTGRES_CONNECT_TIMEOUT", default_value = "5m", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub postgres_connect_timeout: Duration,

    /// The maximum number of open connections to PostgreSQL.
    #[arg(long, env = "CONCOURSE_API_MAX_CONNS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub api_max_conns: u32,
}

fn parse_external_url(value: &str) -> Result<String, String> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| format!("'{value}' must start with http:// or https://"))?;
    if rest.trim_end_matches('/').is_empty() {
        return Err(format!("'{value}' has no host"));
    }
    Ok(value.trim_end_matches('/').to_string())
}

fn parse_log_level(value: &str) -> Result<String, String> {
    match value {
        "debug" | "info" | "warn" | "error" => Ok(value.to_string()),
        // lager's `fatal` is the most severe level Concourse accepts; our nearest is error.
        "fatal" => Ok("error".to_string()),
        _ => Err(format!("'{value}' is not one of debug, info, warn, error, fatal")),
    }
}

fn parse_positive_duration(value: &str) -> Result<Duration, String> {
    match crate::duration::parse(value)? {
        Duration::ZERO => Err("must be longer than 0s".to_string()),
        d => Ok(d),
    }
}

impl PostgresFlags {
    pub fn settings(&self) -> crate::db::PostgresSettings {
        crate::db::PostgresSettings {
            host: self.postgres_host.clone(),
            port: self.postgres_port,
            socket: self.postgres_socket.clone(),
            user: self.postgres_user.clone(),
            password: self.postgres_password.clone(),
            database: self.postgres_database.clone(),
            sslmode: self.postgres_sslmode.clone(),
            ca_cert: self.postgres_ca_cert.clone(),
            connect_timeout: self.postgres_connect_timeout,
            max_connections: self.api_max_conns,
        }
    }
}

impl ServerFlags {
    /// The server's options, listening on `default_bind_ip` unless `--bind-ip` says otherwise.
    pub fn options(
        &self,
        default_bind_ip: IpAddr,
        runtime: std::sync::Arc<dyn crate::runtime::Runtime>,
    ) -> crate::server::ServerOptions {
        crate::server::ServerOptions {
            runtime,
            credentials: self.credentials.manager(),
            bind: std::net::SocketAddr::new(self.bind_ip.unwrap_or(default_bind_ip), self.bind_port),
            external_url: self.external_url.clone(),
            cluster_name: self.cluster_name.clone(),
            local_users: self.auth.add_local_user.clone(),
            main_team_users: self.auth.main_team_local_user.clone(),
            auth_duration: self.auth.auth_duration,
            cookie_secure: self.auth.cookie_secure,
            encryption_key: self.encryption.encryption_key.clone(),
        }
    }
}
