//! `atc web`: the production server on PostgreSQL.

use std::net::{IpAddr, Ipv4Addr};

use std::sync::Arc;

use anyhow::{Context, bail};

use super::flags::{PostgresFlags, ServerFlags, default_data_dir, start_local_runtime};
use super::kubernetes::KubernetesFlags;
use super::{ConfigFileFlag, start_telemetry};
use crate::runtime::Runtime;
use crate::server;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigFileFlag,
    #[command(flatten)]
    pub server: ServerFlags,
    #[command(flatten)]
    pub postgres: PostgresFlags,
    #[command(flatten)]
    pub kubernetes: KubernetesFlags,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // A bad credential manager setting is refused before anything starts.
    args.server.credentials.manager(None)?;
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
    let (runtime, kube_client): (Arc<dyn Runtime>, _) = match args.kubernetes.runtime().await? {
        Some((runtime, client)) => (Arc::new(runtime), Some(client)),
        None => (Arc::new(start_local_runtime(&args.server.runtime, default_work_dir).await?), None),
    };
    // Prometheus only when asked for, as in Concourse.
    let options = args.server.options(IpAddr::V4(Ipv4Addr::UNSPECIFIED), None, runtime, kube_client.as_ref())?;
    Ok(server::serve(db, options, server::shutdown_signal()).await?)
}
