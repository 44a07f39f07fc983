//! Command-line entry points: `web`, `quickstart`, `migrate`, `validate-pipeline`.

mod validate_pipeline;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "atc", version, about = "A Concourse-compatible CI server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a pipeline configuration the way the server would.
    ValidatePipeline(validate_pipeline::Args),
}

pub fn run(args: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    match cli.command {
        Command::ValidatePipeline(args) => validate_pipeline::run(args),
    }
}
