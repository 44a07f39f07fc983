//! `atc validate-pipeline`: the server's pipeline checks, offline. Vars
//! given with `-v`/`-y`/`-l` are interpolated first, as `fly` does; vars
//! not given stay as they are.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use crate::config::{self, vars};

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
fn check(args: &Args) -> Result<config::Validation, String> {
    let vars = load_vars(args)?;
    let bytes = std::fs::read(&args.config).map_err(|e| format!("cannot read {}: {e}", args.config.display()))?;
    check_document(&bytes, &vars).map_err(|e| format!("{}: {e}", args.config.display()))
}

/// Validates a configuration once the `vars` given are interpolated into it;
/// `Err` when it cannot be read at all.
pub(crate) fn check_document(
    bytes: &[u8],
    vars: &serde_json::Map<String, Value>,
) -> Result<config::Validation, String> {
    let document = config::yaml_value(bytes).map_err(|e| e.to_string())?;
    let lookup = |reference: &vars::VarRef| -> Result<Option<Value>, String> {
        if reference.source.is_some() {
            return Ok(None);
        }
        Ok(vars.get(&reference.path).cloned())
    };
    let document = vars::interpolate(&document, &lookup, vars::Undefined::Keep).map_err(|e| e.to_string())?;
    let pipeline = config::from_value(document).map_err(|e| e.to_string())?;
    Ok(config::validate(&pipeline))
}

fn load_vars(args: &Args) -> Result<serde_json::Map<String, Value>, String> {
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
        let value = config::yaml_value(value.as_bytes()).map_err(|e| format!("-y {name}: {e}"))?;
        vars.insert(name.to_string(), value);
    }
    Ok(vars)
}

fn vars_file(path: &Path) -> Result<serde_json::Map<String, Value>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read vars file {}: {e}", path.display()))?;
    match config::yaml_value(&bytes).map_err(|e| format!("vars file {}: {e}", path.display()))? {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(serde_json::Map::new()),
        _ => Err(format!("vars file {} must be a map of names to values", path.display())),
    }
}

fn split_assignment<'a>(assignment: &'a str, flag: &str) -> Result<(&'a str, &'a str), String> {
    assignment
        .split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| format!("{flag} '{assignment}' must be NAME=VALUE"))
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
