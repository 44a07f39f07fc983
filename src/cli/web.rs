//! `atc web`: the production server on PostgreSQL.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context, bail};

use super::flags::{PostgresFlags, ServerFlags, default_data_dir, start_local_runtime};
use super::{ConfigFileFlag, start_telemetry};
use crate::server;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigFileFlag,
    #[command(flatten)]
    pub server: ServerFlags,
    #[command(flatten)]
    pub postgres: PostgresFlags,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // A bad credential manager setting is refused before anything starts.
    args.server.credentials.manager()?;
    if args.server.auth.main_team_local_user.is_empty() {
        bail!("the main team needs an owner: set --main-team-local-user (and --add-local-user for that user)");
    }
    if args.server.prometheus.prometheus_bind_ip.is_some() && args.server.prometheus.prometheus_bind_port.is_none() {
        bail!("--prometheus-bind-ip needs --prometheus-bind-port: atc web serves no metrics without a port");
    }
    let telemetry = start_telemetry(&args.server).await?;
    let result = serve(args).await;
    telemetry.shutdown().await;
    result
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let db = crate::db::Db::connect_postgres(&args.postgres.settings()).await.with_context(|| {
        format!(
            "cannot connect to PostgreSQL at {}:{} (database '{}')",
            args.postgres.postgres_host, args.postgres.postgres_port, args.postgres.postgres_database
        )
    })?;
    let default_work_dir = match &args.server.runtime.work_dir {
        Some(dir) => dir.clone(),
        None => default_data_dir()?.join("work"),
    };
    // Prometheus only when asked for, as in Concourse.
    let runtime = start_local_runtime(&args.server.runtime, default_work_dir).await?;
    let options = args.server.options(IpAddr::V4(Ipv4Addr::UNSPECIFIED), None, std::sync::Arc::new(runtime))?;
    Ok(server::serve(db, options, server::shutdown_signal()).await?)
}
