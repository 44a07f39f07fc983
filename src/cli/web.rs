//! `atc web`: the production server on PostgreSQL.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context, bail};

use super::flags::{PostgresFlags, ServerFlags, default_data_dir, start_local_runtime};
use super::{ConfigFileFlag, init_logging};
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
    init_logging(&args.server.log_level);
    if args.server.auth.main_team_local_user.is_empty() {
        bail!("the main team needs an owner: set --main-team-local-user (and --add-local-user for that user)");
    }
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
    let runtime = start_local_runtime(&args.server.runtime, default_work_dir).await?;
    let options = args.server.options(IpAddr::V4(Ipv4Addr::UNSPECIFIED), std::sync::Arc::new(runtime));
    server::serve(db, options, server::shutdown_signal()).await
}
