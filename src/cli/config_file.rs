//! `--config FILE`: a TOML file whose keys are flag names (`bind-port = 8080`).
//! A key applies only when its flag is given neither on the command line
//! nor through its `CONCOURSE_*` variable, so the precedence is
//! command line > environment > file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{ArgAction, Command};

/// The flag that names the file; also read from `CONCOURSE_CONFIG`.
pub const CONFIG_FLAG: &str = "config";

/// Why the `--config` file cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read config file {}: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {} is not valid TOML: {source}", .path.display())]
    NotToml {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{}: unknown key '{key}': `atc {subcommand}` has no --{key} flag", .path.display())]
    UnknownKey { path: PathBuf, key: String, subcommand: String },
    #[error("{}: key '{key}' takes one value, not a list", .path.display())]
    NotRepeatable { path: PathBuf, key: String },
    #[error("{}: key '{key}' must be true or false, got {value:?}", .path.display())]
    NotABoolean { path: PathBuf, key: String, value: toml::Value },
    /// A table or datetime, which no flag takes.
    #[error("{}: key '{key}' has an unsupported value {value:?}", .path.display())]
    UnsupportedValue { path: PathBuf, key: String, value: toml::Value },
}

/// Returns `args` with the file's settings added as flags, for subcommands
/// that take `--config`.
pub fn expand(args: Vec<OsString>, root: &Command) -> Result<Vec<OsString>, ConfigFileError> {
    let Some(subcommand_name) = args.get(1).and_then(|a| a.to_str()) else {
        return Ok(args);
    };
    let Some(subcommand) = root.find_subcommand(subcommand_name) else {
        return Ok(args);
    };
    if !subcommand.get_arguments().any(|a| a.get_id() == "config_file") {
        return Ok(args);
    }
    let path = flag_value(&args, CONFIG_FLAG).or_else(|| std::env::var_os("CONCOURSE_CONFIG"));
    let Some(path) = path.map(PathBuf::from) else {
        return Ok(args);
    };
    let settings = read(&path)?;
    let mut expanded = args.clone();
    for (key, value) in settings {
        let flag = subcommand
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && key != CONFIG_FLAG)
            .ok_or_else(|| ConfigFileError::UnknownKey {
                path: path.clone(),
                key: key.clone(),
                subcommand: subcommand_name.to_string(),
            })?;
        let from_env = flag.get_env().is_some_and(|var| std::env::var_os(var).is_some());
        if from_env || flag_value(&args, &key).is_some() || has_switch(&args, &key) {
            continue;
        }
        let repeatable = matches!(flag.get_action(), ArgAction::Append);
        let values = match value {
            toml::Value::Array(items) if repeatable => items,
            toml::Value::Array(_) => {
                return Err(ConfigFileError::NotRepeatable { path, key });
            }
            single => vec![single],
        };
        for value in values {
            match (flag.get_action(), value) {
                (ArgAction::SetTrue, toml::Value::Boolean(true)) => expanded.push(format!("--{key}").into()),
                (ArgAction::SetTrue, toml::Value::Boolean(false)) => {}
                (ArgAction::SetTrue, other) => {
                    return Err(ConfigFileError::NotABoolean { path, key, value: other });
                }
                (_, toml::Value::String(s)) => expanded.push(format!("--{key}={s}").into()),
                (_, toml::Value::Integer(n)) => expanded.push(format!("--{key}={n}").into()),
                (_, toml::Value::Float(n)) => expanded.push(format!("--{key}={n}").into()),
                (_, toml::Value::Boolean(b)) => expanded.push(format!("--{key}={b}").into()),
                (_, other) => {
                    return Err(ConfigFileError::UnsupportedValue { path, key, value: other });
                }
            }
        }
    }
    Ok(expanded)
}

fn read(path: &Path) -> Result<toml::Table, ConfigFileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigFileError::Unreadable { path: path.to_path_buf(), source })?;
    text.parse::<toml::Table>().map_err(|source| ConfigFileError::NotToml { path: path.to_path_buf(), source })
}

/// The value of `--name VALUE` or `--name=VALUE` among `args`.
fn flag_value(args: &[OsString], name: &str) -> Option<OsString> {
    let long = format!("--{name}");
    let with_value = format!("--{name}=");
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == long {
            return iter.next().cloned();
        }
        if let Some(value) = text.strip_prefix(&with_value) {
            return Some(value.into());
        }
    }
    None
}

fn has_switch(args: &[OsString], name: &str) -> bool {
    let long = format!("--{name}");
    args.iter().any(|a| a.to_string_lossy() == long)
}
