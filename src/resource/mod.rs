//! The resource protocol: `check`, `in` and `out` of a resource type run
//! through a [`Runtime`], JSON on stdin, JSON on stdout, logs on stderr.
//! What a script prints is untrusted: every way it can be wrong is a
//! [`ResourceError`] quoting what it printed, never a panic.
//!
//! A caller describes where and how the script runs with a [`ResourceRun`]
//! (image, handle, the resource-protocol environment) and calls [`check`],
//! [`get`] or [`put`] with a [`ScriptRunner`], which runs the script's step
//! (the engine's, which follows its log and survives restarts).

pub mod builtin;
mod env;

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::env::BuildEnv;
use crate::nul;
use crate::runtime::{
    Artifact, ImageSpec, InputMount, Limits, OutputMount, ProcessSpec, RuntimeError, Stdout, StepHandle, StepMetadata,
    StepOutcome, StepSpec, TraceContext,
};

/// A resource version: string keys to string values, as Concourse keeps them.
pub type Version = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataField {
    pub name: String,
    pub value: String,
}

/// What `in` and `out` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionResult {
    pub version: Version,
    pub metadata: Vec<MetadataField>,
}

/// The result of `in`: the version fetched and the files, as an artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub result: VersionResult,
    pub artifact: Artifact,
}

/// Where `in` writes (its `DEST`) and `out` reads (its `SRC`), relative to
/// the step's root, where the script starts.
pub const GET_DIR: &str = "get";
pub const PUT_DIR: &str = "put";
/// The name of `in`'s output in [`crate::runtime::StepOutcome::outputs`].
const FETCHED_OUTPUT: &str = "resource";
/// How much of a bad response an error quotes.
const QUOTE_LIMIT: usize = 1024;

/// How and where one resource script runs.
pub struct ResourceRun {
    /// Unique name of this run (see [`StepSpec::handle`]).
    pub handle: StepHandle,
    pub metadata: StepMetadata,
    /// Usually [`ImageSpec::ResourceType`] of the resource's base type; a
    /// custom type's fetched image as [`ImageSpec::Artifact`].
    pub image: ImageSpec,
    pub privileged: bool,
    /// Worker tags of the resource (`tags:`).
    pub tags: Vec<String>,
    /// The resource-protocol environment (`BUILD_ID`, ...; see [`BuildEnv`]).
    pub env: Vec<(String, String)>,
    /// The step's span, which the script continues.
    pub trace: Option<TraceContext>,
}

/// Runs a resource script's step to its exit: the caller decides where its
/// stderr (its log) goes and when it is cancelled.
pub trait ScriptRunner: Send + Sync {
    fn run_script(&self, spec: StepSpec) -> BoxFuture<'_, Result<StepOutcome, RuntimeError>>;
    /// Frees an artifact of a script whose response was refused.
    fn discard(&self, artifact: Artifact) -> BoxFuture<'_, ()>;
}

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// The script could not be run, or was interrupted.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The script exited non-zero: the step failed.
    #[error("resource script '{script}' failed: exit status {exit_code}{}", quoted_suffix(.stdout))]
    Failed { script: String, exit_code: i32, stdout: String },
    /// The script exited 0 but its response is not what the protocol asks.
    #[error("resource script '{script}' {problem}: {quoted}")]
    InvalidResponse { script: String, problem: String, quoted: String },
}

fn quoted_suffix(stdout: &str) -> String {
    if stdout.is_empty() { String::new() } else { format!("; it printed: {stdout}") }
}

#[derive(Serialize)]
struct Request<'a> {
    source: &'a Value,
    #[serde(skip_serializing_if = "is_absent")]
    params: Option<&'a Value>,
    // Left out, never null, when there is none: real resource types rely on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a Version>,
}

/// Concourse marshals params with `omitempty`: null and `{}` are left out.
fn is_absent(params: &Option<&Value>) -> bool {
    match params {
        None | Some(Value::Null) => true,
        Some(Value::Object(map)) => map.is_empty(),
        Some(_) => false,
    }
}

/// Runs `check`: the versions from `from` on (or the latest, without
/// `from`), oldest first.
pub async fn check(
    runner: &dyn ScriptRunner,
    run: ResourceRun,
    source: &Value,
    from: Option<&Version>,
) -> Result<Vec<Version>, ResourceError> {
    let request = Request { source, params: None, version: from.filter(|version| !version.is_empty()) };
    let script = "/opt/resource/check".to_string();
    let outcome = run_script(runner, run, &script, Vec::new(), &request, Vec::new(), Vec::new()).await?;
    let stdout = outcome.stdout.unwrap_or_default();
    if outcome.exit_code != 0 {
        return Err(ResourceError::Failed { script, exit_code: outcome.exit_code, stdout: quote_if_any(&stdout) });
    }
    parse_check_response(&script, &stdout)
}

/// Runs `in` for `version`; on success the fetched files are an artifact
/// the caller owns (and releases).
pub async fn get(
    runner: &dyn ScriptRunner,
    run: ResourceRun,
    source: &Value,
    params: Option<&Value>,
    version: &Version,
) -> Result<Fetched, ResourceError> {
    let request = Request { source, params, version: Some(version) };
    let script = format!("/opt/resource/in {GET_DIR}");
    let outputs = vec![OutputMount { name: FETCHED_OUTPUT.to_string(), path: GET_DIR.to_string() }];
    let mut outcome =
        run_script(runner, run, "/opt/resource/in", vec![GET_DIR.into()], &request, Vec::new(), outputs).await?;
    let artifact = outcome.outputs.remove(FETCHED_OUTPUT);
    let result = version_result(&script, outcome.exit_code, outcome.stdout.unwrap_or_default());
    match (result, artifact) {
        (Ok(result), Some(artifact)) => Ok(Fetched { result, artifact }),
        (Ok(_), None) => Err(RuntimeError::Setup("the runtime kept no files of the get".into()).into()),
        (Err(err), artifact) => {
            if let Some(artifact) = artifact {
                runner.discard(artifact).await;
            }
            Err(err)
        }
    }
}

/// Runs `out` with `inputs` (name, artifact) laid out under its `SRC`.
pub async fn put(
    runner: &dyn ScriptRunner,
    run: ResourceRun,
    source: &Value,
    params: Option<&Value>,
    inputs: &[(String, Artifact)],
) -> Result<VersionResult, ResourceError> {
    let request = Request { source, params, version: None };
    let script = format!("/opt/resource/out {PUT_DIR}");
    let mounts = inputs
        .iter()
        .map(|(name, artifact)| InputMount { artifact: artifact.clone(), path: format!("{PUT_DIR}/{name}") })
        .collect();
    let outcome =
        run_script(runner, run, "/opt/resource/out", vec![PUT_DIR.into()], &request, mounts, Vec::new()).await?;
    version_result(&script, outcome.exit_code, outcome.stdout.unwrap_or_default())
}

async fn run_script(
    runner: &dyn ScriptRunner,
    run: ResourceRun,
    path: &str,
    args: Vec<String>,
    request: &Request<'_>,
    inputs: Vec<InputMount>,
    outputs: Vec<OutputMount>,
) -> Result<crate::runtime::StepOutcome, ResourceError> {
    let stdin =
        serde_json::to_vec(request).map_err(|err| RuntimeError::Setup(format!("cannot encode request: {err}")))?;
    let spec = StepSpec {
        handle: run.handle,
        metadata: run.metadata,
        image: Some(run.image),
        privileged: run.privileged,
        limits: Limits::default(),
        tags: run.tags,
        inputs,
        outputs,
        caches: Vec::new(),
        process: ProcessSpec {
            path: path.to_string(),
            args,
            dir: String::new(),
            user: None,
            env: run.env,
            stdin: Some(stdin),
            stdout: Stdout::Capture,
        },
        sidecars: Vec::new(),
        trace: run.trace,
    };
    Ok(runner.run_script(spec).await?)
}

fn invalid(script: &str, problem: impl Into<String>, stdout: &[u8]) -> ResourceError {
    ResourceError::InvalidResponse { script: script.to_string(), problem: problem.into(), quoted: quote(stdout) }
}

/// The first [`QUOTE_LIMIT`] bytes of what a script printed, for a message
/// (which is stored: a NUL byte is shown as `\0`).
fn quote(stdout: &[u8]) -> String {
    let shown = &stdout[..stdout.len().min(QUOTE_LIMIT)];
    let mut text = nul::printable(String::from_utf8_lossy(shown).trim_end());
    if stdout.len() > QUOTE_LIMIT {
        text.push_str(&format!("... ({} more bytes)", stdout.len() - QUOTE_LIMIT));
    }
    if text.is_empty() { "(nothing)".to_string() } else { text }
}

fn quote_if_any(stdout: &[u8]) -> String {
    if stdout.iter().all(u8::is_ascii_whitespace) { String::new() } else { quote(stdout) }
}

/// Like Concourse, the first JSON value is the response; empty output is
/// `None`.
fn first_json_value(script: &str, stdout: &[u8]) -> Result<Option<Value>, ResourceError> {
    match serde_json::Deserializer::from_slice(stdout).into_iter::<Value>().next() {
        None => Ok(None),
        Some(Ok(value)) => Ok(Some(value)),
        Some(Err(err)) => {
            let problem = if crate::nesting::is_too_deep(&err) {
                format!("printed JSON nested more than {} levels deep", crate::nesting::MAX_JSON_DEPTH)
            } else {
                format!("printed invalid JSON ({err})")
            };
            Err(invalid(script, problem, stdout))
        }
    }
}

pub(crate) fn parse_check_response(script: &str, stdout: &[u8]) -> Result<Vec<Version>, ResourceError> {
    // Empty output is no new versions, as in Concourse.
    let Some(value) = first_json_value(script, stdout)? else { return Ok(Vec::new()) };
    let Value::Array(items) = value else {
        return Err(invalid(script, "printed something other than an array of versions", stdout));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            parse_version(&item).map_err(|problem| {
                invalid(script, format!("printed a bad version at index {index}: {problem}"), stdout)
            })
        })
        .collect()
}

/// What is wrong with a version a script printed.
#[derive(Debug, thiserror::Error)]
enum InvalidVersion {
    #[error("a version must be an object")]
    NotAnObject,
    #[error("the key '{}' contains {}", nul::printable(.0), nul::DESCRIPTION)]
    NulInKey(String),
    #[error("the value of '{0}' contains {description}", description = nul::DESCRIPTION)]
    NulInValue(String),
    #[error("the value of '{key}' is {value}, not a string")]
    NotAString { key: String, value: Value },
}

/// A version's keys and values are stored and handed to scripts as text:
/// a NUL in either is refused here, before anything is saved.
fn parse_version(value: &Value) -> Result<Version, InvalidVersion> {
    let Value::Object(fields) = value else { return Err(InvalidVersion::NotAnObject) };
    fields
        .iter()
        .map(|(key, value)| match value {
            _ if nul::contains_nul(key) => Err(InvalidVersion::NulInKey(key.clone())),
            Value::String(text) if nul::contains_nul(text) => Err(InvalidVersion::NulInValue(key.clone())),
            Value::String(text) => Ok((key.clone(), text.clone())),
            other => Err(InvalidVersion::NotAString { key: key.clone(), value: other.clone() }),
        })
        .collect()
}

pub(crate) fn version_result(script: &str, exit_code: i32, stdout: Vec<u8>) -> Result<VersionResult, ResourceError> {
    if exit_code != 0 {
        return Err(ResourceError::Failed { script: script.to_string(), exit_code, stdout: quote_if_any(&stdout) });
    }
    let Some(value) = first_json_value(script, &stdout)? else {
        return Err(invalid(script, "printed no response", &stdout));
    };
    let Value::Object(mut response) = value else {
        return Err(invalid(script, "printed something other than an object with a version", &stdout));
    };
    let version = match response.remove("version") {
        None | Some(Value::Null) => return Err(invalid(script, "printed no version", &stdout)),
        Some(version) => parse_version(&version)
            .map_err(|problem| invalid(script, format!("printed a bad version: {problem}"), &stdout))?,
    };
    let metadata = match response.remove("metadata") {
        None | Some(Value::Null) => Vec::new(),
        Some(metadata) => parse_metadata(metadata)
            .map_err(|problem| invalid(script, format!("printed bad metadata: {problem}"), &stdout))?,
    };
    Ok(VersionResult { version, metadata })
}

/// What is wrong with the metadata a script printed.
#[derive(Debug, thiserror::Error)]
enum InvalidMetadata {
    #[error("metadata must be an array")]
    NotAnArray,
    #[error("the field '{}' contains {}", nul::printable(.0), nul::DESCRIPTION)]
    NulInField(String),
    #[error("{0} is not {{\"name\": string, \"value\": string}}")]
    NotAField(Value),
}

fn parse_metadata(metadata: Value) -> Result<Vec<MetadataField>, InvalidMetadata> {
    let Value::Array(fields) = metadata else { return Err(InvalidMetadata::NotAnArray) };
    fields
        .into_iter()
        .map(|field| match (optional_string(&field, "name"), optional_string(&field, "value")) {
            (Some(name), Some(value)) if nul::contains_nul(&name) || nul::contains_nul(&value) => {
                Err(InvalidMetadata::NulInField(name))
            }
            (Some(name), Some(value)) if field.is_object() => Ok(MetadataField { name, value }),
            _ => Err(InvalidMetadata::NotAField(field)),
        })
        .collect()
}

/// A missing or null field reads as empty, as Go decodes it; another type is wrong.
fn optional_string(object: &Value, key: &str) -> Option<String> {
    match object.get(key) {
        None | Some(Value::Null) => Some(String::new()),
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_nested_past_the_json_limit_is_an_invalid_response() {
        let deep = format!(
            "{}{}",
            "[".repeat(10 * crate::nesting::MAX_JSON_DEPTH),
            "]".repeat(10 * crate::nesting::MAX_JSON_DEPTH)
        );
        let err = parse_check_response("/opt/resource/check", deep.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("printed JSON nested more than 127 levels deep"), "{err}");
    }
}
