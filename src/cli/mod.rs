//! Command-line entry points: `web`, `quickstart`, `migrate`, `validate-pipeline`.

mod config_file;
mod flags;
mod kubernetes;
mod migrate;
mod quickstart;
mod resource;
pub(crate) mod validate_pipeline;
mod web;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::telemetry::Telemetry;

pub use flags::{PostgresFlags, ServerFlags};

#[derive(Debug, Parser)]
#[command(name = "atc", version, about = "A Concourse-compatible CI server with built-in observability")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server against PostgreSQL (production).
    Web(Box<web::Args>),
    /// Run the server on an embedded SQLite database with a local user: one command to try atc.
    Quickstart(Box<quickstart::Args>),
    /// Inspect or apply database migrations, then exit.
    Migrate(migrate::Args),
    /// Check a pipeline configuration the way the server would.
    ValidatePipeline(validate_pipeline::Args),
    /// Run a built-in resource type's check, in or out (used by the local runtime).
    #[command(hide = true)]
    Resource(resource::Args),
}

/// A TOML file of flag values (`bind-port = 8080`); flags and CONCOURSE_*
/// variables take precedence over it.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigFileFlag {
    /// A TOML file of flag values, keyed by flag name (see config.example.toml).
    #[arg(long = "config", id = "config_file", env = "CONCOURSE_CONFIG", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
}

/// The clap command tree, for tools and tests that inspect the flags.
pub fn command() -> clap::Command {
    Cli::command()
}

pub fn run(args: Vec<OsString>) -> ExitCode {
    let root = Cli::command();
    let args = match config_file::expand(args, &root) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let cli = match root.try_get_matches_from(args).and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    match cli.command {
        Command::Web(args) => run_async(web::run(*args)),
        Command::Quickstart(args) => run_async(quickstart::run(*args)),
        Command::Migrate(args) => run_async(migrate::run(args)),
        Command::ValidatePipeline(args) => validate_pipeline::run(args),
        Command::Resource(args) => resource::run(args),
    }
}

fn run_async(future: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(future) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts exporting telemetry as the flags say, then logging (whose
/// `tracing` spans become OTel spans when traces are exported).
async fn start_telemetry(flags: &ServerFlags) -> anyhow::Result<Telemetry> {
    let telemetry = Telemetry::install(&flags.telemetry()).await?;
    init_logging(&flags.log_level, &telemetry);
    for destination in telemetry.destinations() {
        tracing::info!("exporting {destination}");
    }
    Ok(telemetry)
}

/// Logs go to stderr at `--log-level` (changeable later through the API);
/// `RUST_LOG` refines it when set.
fn init_logging(level: &str, telemetry: &Telemetry) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let level = crate::logging::LogLevel::parse(level).unwrap_or(crate::logging::LogLevel::Info);
    let filter = crate::logging::control().filter_layer(level);
    let spans = telemetry.tracing_layer();
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = tracing_subscriber::registry().with(filter).with(spans).with(logs).try_init();
}
