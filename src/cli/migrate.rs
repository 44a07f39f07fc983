//! `atc migrate`: database versions without starting the server.

use anyhow::Context;

use super::ConfigFileFlag;
use super::flags::{EncryptionFlags, PostgresFlags};
use crate::db::Db;

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("action").required(true).multiple(false))]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigFileFlag,
    #[command(flatten)]
    pub postgres: PostgresFlags,
    #[command(flatten)]
    pub encryption: EncryptionFlags,
    /// Print the current database version and exit.
    #[arg(long, group = "action")]
    pub current_db_version: bool,
    /// Print the newest database version this atc supports and exit.
    #[arg(long, group = "action")]
    pub supported_db_version: bool,
    /// Apply every pending migration and exit.
    #[arg(long, group = "action")]
    pub migrate_to_latest_version: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.supported_db_version {
        println!("{}", Db::supported_postgres_version());
        return Ok(());
    }
    let db = Db::connect_postgres(&args.postgres.settings())
        .await
        .context("cannot connect to PostgreSQL")?
        .with_encryption(args.encryption.encryption_key);
    if args.migrate_to_latest_version {
        db.migrate().await?;
    }
    println!("{}", db.current_version().await?);
    db.close().await;
    Ok(())
}
