//! `atc validate-pipeline`: the server's pipeline checks, offline.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pipeline configuration file (YAML or JSON).
    #[arg(short = 'c', long = "config")]
    pub config: PathBuf,
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
    /// A variable for ((interpolation)), as NAME=VALUE. Repeatable.
    #[arg(short = 'v', long = "var", value_name = "NAME=VALUE")]
    pub var: Vec<String>,
    /// A YAML file of variables. Repeatable.
    #[arg(short = 'l', long = "load-vars-from", value_name = "FILE")]
    pub load_vars_from: Vec<PathBuf>,
}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("validate-pipeline is being built");
    ExitCode::FAILURE
}
