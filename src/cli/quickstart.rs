//! `atc quickstart`: everything on one machine with nothing to install:
//! SQLite in a data directory, a local admin user, a sample pipeline.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::flags::{ServerFlags, default_data_dir, start_local_runtime};
use super::{ConfigFileFlag, start_telemetry};
use crate::auth::LocalUser;
use crate::server;

const SAMPLE_PIPELINE: &str = include_str!("../../examples/hello.yml");
const QUICKSTART_USERNAME: &str = "admin";
/// Quickstart serves Prometheus metrics here unless told otherwise.
pub const DEFAULT_PROMETHEUS_PORT: u16 = 9391;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigFileFlag,
    #[command(flatten)]
    pub server: ServerFlags,
    /// Where the database, the generated user and the sample pipeline live
    /// [default: $XDG_DATA_HOME/atc or ~/.local/share/atc].
    #[arg(long, env = "CONCOURSE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// The generated user, kept in the data directory so it survives restarts.
#[derive(Serialize, Deserialize)]
struct GeneratedUser {
    username: String,
    password: String,
}

fn generated_user(data_dir: &Path) -> anyhow::Result<GeneratedUser> {
    let path = data_dir.join("quickstart-user.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is damaged; delete it to get a new user", path.display()));
    }
    let mut secret = [0u8; 12];
    rand::rng().fill_bytes(&mut secret);
    let user = GeneratedUser { username: QUICKSTART_USERNAME.into(), password: URL_SAFE_NO_PAD.encode(secret) };
    write_private(&path, &serde_json::to_string_pretty(&user)?)?;
    Ok(user)
}

/// Writes a file only its owner can read: it holds a password.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // A bad credential manager setting is refused before anything starts.
    args.server.credentials.manager(None)?;
    let telemetry = start_telemetry(&args.server).await?;
    let result = serve(args).await;
    telemetry.shutdown().await;
    result
}

async fn serve(mut args: Args) -> anyhow::Result<()> {
    let data_dir = match args.data_dir.take() {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;

    let auth = &mut args.server.auth;
    let generated = if auth.add_local_user.is_empty() && auth.main_team_local_user.is_empty() {
        let user = generated_user(&data_dir)?;
        auth.add_local_user.push(LocalUser::new(&user.username, &user.password));
        auth.main_team_local_user.push(user.username.clone());
        Some(user)
    } else {
        None
    };
    if auth.main_team_local_user.is_empty() {
        auth.main_team_local_user = auth.add_local_user.iter().map(|u| u.username.clone()).collect();
    }

    let sample = data_dir.join("hello.yml");
    if !sample.exists() {
        std::fs::write(&sample, SAMPLE_PIPELINE).with_context(|| format!("cannot write {}", sample.display()))?;
    }

    let runtime = start_local_runtime(&args.server.runtime, data_dir.join("work")).await?;

    let db_path = data_dir.join("atc.db");
    let db = crate::db::Db::open_sqlite(&db_path)
        .await
        .with_context(|| format!("cannot open database {}", db_path.display()))?;
    let options = args.server.options(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(DEFAULT_PROMETHEUS_PORT),
        std::sync::Arc::new(runtime),
        None,
    )?;
    let shutdown = server::shutdown_signal();
    let server = server::start(db, options).await?;

    let url = &server.external_url;
    println!("atc is ready at {url}  (data: {})", data_dir.display());
    if let Some(prometheus) = server.prometheus_addr {
        println!("Prometheus metrics at http://{prometheus}/metrics");
    }
    match &generated {
        Some(user) => println!("local user: {}  password: {}", user.username, user.password),
        None => println!("local users: those given by --add-local-user"),
    }
    let (username, password) = match &generated {
        Some(user) => (user.username.as_str(), user.password.as_str()),
        None => ("USERNAME", "PASSWORD"),
    };
    println!("try it:");
    println!("  fly -t local login -c {url} -u {username} -p {password}");
    println!("  fly -t local set-pipeline -p hello -c {}", sample.display());
    println!("  fly -t local unpause-pipeline -p hello");
    println!("  fly -t local trigger-job -j hello/say-hello --watch");

    shutdown.await;
    tracing::info!("shutting down");
    Ok(server.stop().await?)
}
