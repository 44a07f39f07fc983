//! Resource types built into the `atc` binary. They run as real processes
//! (`atc resource TYPE check|in|out [DIR]`) through the same protocol as any
//! script type: request on stdin, response on stdout, log on stderr.

mod git;
mod mock;
mod time;

use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

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

/// Runs `command` of built-in `resource_type`. `dir` is `in`'s DEST or
/// `out`'s SRC; `log` is the script's stderr. The error is the message to
/// print before exiting non-zero.
pub fn run(
    resource_type: &str,
    command: Command,
    dir: Option<&Path>,
    request: &[u8],
    log: &mut dyn Write,
) -> Result<Value, String> {
    let dir = match (command, dir) {
        (Command::Check, _) => None,
        // Absolute, so that it stays right whatever directory a command runs in.
        (_, Some(dir)) if !dir.as_os_str().is_empty() => {
            Some(std::path::absolute(dir).map_err(|err| format!("bad directory {}: {err}", dir.display()))?)
        }
        (Command::In, _) => return Err("destination path not specified".into()),
        (Command::Out, _) => return Err("source path not specified".into()),
    };
    match resource_type {
        "mock" => mock::run(command, dir.as_deref(), request, log),
        "time" => time::run(command, dir.as_deref(), request, log),
        "git" => git::run(command, dir.as_deref(), request, log),
        other => Err(format!("'{other}' is not a built-in resource type ({})", BUILTIN_TYPES.join(", "))),
    }
}

/// Decodes a request, naming what is wrong with it.
fn decode<T: DeserializeOwned>(request: &[u8]) -> Result<T, String> {
    serde_json::from_slice(request).map_err(|err| format!("invalid payload: {err}"))
}

fn to_json(value: impl serde::Serialize) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|err| format!("cannot encode the response: {err}"))
}

/// `base/relative` for a path a request names. A leading `/` is dropped (Go's
/// `filepath.Join` does the same); `..` may not climb out of `base`.
fn safe_join(base: &Path, relative: &str) -> Result<std::path::PathBuf, String> {
    crate::runtime::local::join_relative(base, relative.trim_start_matches('/')).map_err(|err| err.to_string())
}
