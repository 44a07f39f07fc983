//! `atc resource TYPE check|in|out [DIR]` (hidden): a built-in resource type
//! as an executable, so the local runtime runs it through exactly the same
//! protocol as a script type.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::resource::builtin::{self, Command};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The built-in resource type: git, mock or time.
    resource_type: String,
    /// check, in or out.
    command: String,
    /// `in`'s destination or `out`'s source directory.
    dir: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let mut stderr = std::io::stderr();
    let Some(command) = Command::parse(&args.command) else {
        let _ = writeln!(stderr, "'{}' is not a resource command (check, in, out)", args.command);
        return ExitCode::from(2);
    };
    let mut request = Vec::new();
    if let Err(err) = std::io::stdin().read_to_end(&mut request) {
        let _ = writeln!(stderr, "cannot read the request: {err}");
        return ExitCode::FAILURE;
    }
    match builtin::run(&args.resource_type, command, args.dir.as_deref(), &request, &mut stderr) {
        Ok(response) => {
            let mut stdout = std::io::stdout().lock();
            match writeln!(stdout, "{response}").and_then(|()| stdout.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        Err(message) => {
            let _ = writeln!(stderr, "{message}");
            ExitCode::FAILURE
        }
    }
}
