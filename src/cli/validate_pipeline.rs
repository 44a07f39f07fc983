//! `atc validate-pipeline`: the server's pipeline checks, offline. Vars
//! given with `-v`/`-y`/`-l` are interpolated first, as `fly` does; vars
//! not given stay as they are.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use crate::config::{self, ParseError, vars};

/// Why the pipeline could not be validated at all (rather than being found invalid).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CannotValidate {
    #[error("cannot read {}: {source}", .path.display())]
    UnreadableConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not YAML, or not a pipeline once interpolated.
    #[error("{}: {source}", .path.display())]
    MalformedConfig {
        path: PathBuf,
        #[source]
        source: ParseError,
    },
    #[error("{}: {source}", .path.display())]
    Interpolation {
        path: PathBuf,
        #[source]
        source: vars::InterpolationError,
    },
    #[error("cannot read vars file {}: {source}", .path.display())]
    UnreadableVarsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("vars file {}: {source}", .path.display())]
    MalformedVarsFile {
        path: PathBuf,
        #[source]
        source: ParseError,
    },
    #[error("vars file {} must be a map of names to values", .path.display())]
    VarsFileNotAMap { path: PathBuf },
    #[error("-y {name}: {source}")]
    MalformedYamlVar {
        name: String,
        #[source]
        source: ParseError,
    },
    /// `-v` or `-y` without `=`, or with nothing before it.
    #[error("{flag} '{assignment}' must be NAME=VALUE")]
    NotAnAssignment { flag: &'static str, assignment: String },
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pipeline configuration file (YAML or JSON).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: PathBuf,
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
    /// A string variable for ((interpolation)), as NAME=VALUE. Repeatable.
    #[arg(short = 'v', long = "var", value_name = "NAME=VALUE")]
    pub var: Vec<String>,
    /// A variable whose value is YAML, as NAME=YAML. Repeatable.
    #[arg(short = 'y', long = "yaml-var", value_name = "NAME=YAML")]
    pub yaml_var: Vec<String>,
    /// A YAML file of variables. Repeatable.
    #[arg(short = 'l', long = "load-vars-from", value_name = "FILE")]
    pub load_vars_from: Vec<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    match check(&args) {
        Ok(validation) => report(&validation, args.strict),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the vars, then the file, and validates it; `Err` when it cannot be read at all.
fn check(args: &Args) -> Result<config::Validation, CannotValidate> {
    let vars = load_vars(args)?;
    let bytes = std::fs::read(&args.config)
        .map_err(|source| CannotValidate::UnreadableConfig { path: args.config.clone(), source })?;
    check_document(&args.config, &bytes, &vars)
}

/// Validates the configuration read from `path` once the `vars` given are
/// interpolated into it; `Err` when it cannot be read at all.
pub(crate) fn check_document(
    path: &Path,
    bytes: &[u8],
    vars: &serde_json::Map<String, Value>,
) -> Result<config::Validation, CannotValidate> {
    let malformed = |source| CannotValidate::MalformedConfig { path: path.to_path_buf(), source };
    let document = config::yaml_value(bytes).map_err(malformed)?;
    let lookup = |reference: &vars::VarRef| -> Option<Value> {
        if reference.source.is_some() {
            return None;
        }
        vars.get(&reference.path).cloned()
    };
    let document = vars::interpolate(&document, &lookup, vars::Undefined::Keep)
        .map_err(|source| CannotValidate::Interpolation { path: path.to_path_buf(), source })?;
    let pipeline = config::from_value(document).map_err(malformed)?;
    Ok(config::validate(&pipeline))
}

fn load_vars(args: &Args) -> Result<serde_json::Map<String, Value>, CannotValidate> {
    let mut vars = serde_json::Map::new();
    for file in &args.load_vars_from {
        vars.extend(vars_file(file)?);
    }
    for assignment in &args.var {
        let (name, value) = split_assignment(assignment, "-v")?;
        vars.insert(name.to_string(), Value::String(value.to_string()));
    }
    for assignment in &args.yaml_var {
        let (name, value) = split_assignment(assignment, "-y")?;
        let value = config::yaml_value(value.as_bytes())
            .map_err(|source| CannotValidate::MalformedYamlVar { name: name.to_string(), source })?;
        vars.insert(name.to_string(), value);
    }
    Ok(vars)
}

fn vars_file(path: &Path) -> Result<serde_json::Map<String, Value>, CannotValidate> {
    let bytes = std::fs::read(path)
        .map_err(|source| CannotValidate::UnreadableVarsFile { path: path.to_path_buf(), source })?;
    let document = config::yaml_value(&bytes)
        .map_err(|source| CannotValidate::MalformedVarsFile { path: path.to_path_buf(), source })?;
    match document {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(serde_json::Map::new()),
        _ => Err(CannotValidate::VarsFileNotAMap { path: path.to_path_buf() }),
    }
}

fn split_assignment<'a>(assignment: &'a str, flag: &'static str) -> Result<(&'a str, &'a str), CannotValidate> {
    assignment
        .split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| CannotValidate::NotAnAssignment { flag, assignment: assignment.to_string() })
}

fn report(validation: &config::Validation, strict: bool) -> ExitCode {
    if !validation.warnings.is_empty() {
        println!("WARNING:");
        for warning in &validation.warnings {
            println!("  {}", warning.message);
        }
    }
    if !validation.errors.is_empty() {
        println!("ERROR:");
        for error in &validation.errors {
            println!("  {error}");
        }
    }
    let failed = !validation.errors.is_empty() || (strict && !validation.warnings.is_empty());
    if failed {
        ExitCode::FAILURE
    } else {
        println!("looks good");
        ExitCode::SUCCESS
    }
}
