//! Resource types built into the `atc` binary. They run as real processes
//! (`atc resource TYPE check|in|out [DIR]`) through the same protocol as any
//! script type: request on stdin, response on stdout, log on stderr.

mod git;
mod mock;
mod time;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::runtime::local::PathLeavesBase;

/// The built-in types, by name.
pub const BUILTIN_TYPES: [&str; 3] = ["git", "mock", "time"];

/// One of the three resource commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Check,
    In,
    Out,
}

impl Command {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "check" => Some(Command::Check),
            "in" => Some(Command::In),
            "out" => Some(Command::Out),
            _ => None,
        }
    }
}

/// Why a built-in resource command failed. Its `Display` is the message the
/// command prints (as a script would) before exiting non-zero.
#[derive(Debug, thiserror::Error)]
pub enum BuiltinError {
    #[error("bad directory {}: {source}", .dir.display())]
    BadDirectory {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("destination path not specified")]
    NoDestination,
    #[error("source path not specified")]
    NoSource,
    #[error("'{0}' is not a built-in resource type ({types})", types = BUILTIN_TYPES.join(", "))]
    UnknownType(String),
    #[error(transparent)]
    Mock(#[from] mock::MockError),
    #[error(transparent)]
    Time(#[from] time::TimeError),
    #[error(transparent)]
    Git(#[from] git::GitError),
}

/// Runs `command` of built-in `resource_type`. `dir` is `in`'s DEST or
/// `out`'s SRC; `log` is the script's stderr.
pub fn run(
    resource_type: &str,
    command: Command,
    dir: Option<&Path>,
    request: &[u8],
    log: &mut dyn Write,
) -> Result<Value, BuiltinError> {
    let dir = match (command, dir) {
        (Command::Check, _) => None,
        // Absolute, so that it stays right whatever directory a command runs in.
        (_, Some(dir)) if !dir.as_os_str().is_empty() => Some(
            std::path::absolute(dir).map_err(|source| BuiltinError::BadDirectory { dir: dir.to_path_buf(), source })?,
        ),
        (Command::In, _) => return Err(BuiltinError::NoDestination),
        (Command::Out, _) => return Err(BuiltinError::NoSource),
    };
    match resource_type {
        "mock" => Ok(mock::run(command, dir.as_deref(), request, log)?),
        "time" => Ok(time::run(command, dir.as_deref(), request, log)?),
        "git" => Ok(git::run(command, dir.as_deref(), request, log)?),
        other => Err(BuiltinError::UnknownType(other.to_string())),
    }
}

/// `base/relative` for a path a request names. A leading `/` is dropped (Go's
/// `filepath.Join` does the same); `..` may not climb out of `base`.
fn safe_join(base: &Path, relative: &str) -> Result<PathBuf, PathLeavesBase> {
    crate::runtime::local::join_relative(base, relative.trim_start_matches('/'))
}
