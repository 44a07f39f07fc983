//! `mock`: Concourse's test resource type (concourse/mock-resource), which
//! nearly every acceptance fixture uses. Like the original it refuses
//! unknown fields, so a typo in a fixture is an error, not a silent default.
//!
//! The local runtime has no containers, so the mock always reports itself
//! unprivileged, and `mirror_self` does not copy a root filesystem: the
//! image it writes holds `rootfs/opt/resource/{check,in,out}` (which run
//! this same built-in type) and the `metadata.json` environment
//! (`MIRRORED_VERSION`) that tasks and custom resource types then see.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Command, safe_join};
use crate::duration::InvalidDuration;
use crate::runtime::local::PathLeavesBase;

const DEFAULT_INITIAL_VERSION: &str = "mock";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    mirror_self: Option<bool>,
    initial_version: Option<String>,
    no_initial_version: Option<bool>,
    force_version: Option<String>,
    /// Contents are strings, or any JSON value (written as JSON).
    create_files: Option<BTreeMap<String, Value>>,
    check_delay: Option<String>,
    check_failure: Option<String>,
    metadata: Option<Vec<MetadataField>>,
    log: Option<String>,
}

impl Source {
    fn initial_version(&self) -> String {
        if let Some(version) = self.initial_version.clone().filter(|v| !v.is_empty()) {
            return version;
        }
        // Set by a mirrored image: a custom type defaults to its own version.
        std::env::var("MIRRORED_VERSION")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_INITIAL_VERSION.to_string())
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct MetadataField {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct MockVersion {
    #[serde(default)]
    version: Option<String>,
    /// Emitted by the original in privileged containers; kept on the way through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    privileged: Option<String>,
}

impl MockVersion {
    fn new(version: String) -> Self {
        MockVersion { version: Some(version), privileged: None }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckRequest {
    source: Option<Source>,
    version: Option<MockVersion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InRequest {
    source: Option<Source>,
    version: Option<MockVersion>,
    params: Option<GetParams>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetParams {
    mirror_self_via_params: Option<bool>,
    create_files_via_params: Option<BTreeMap<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutRequest {
    source: Option<Source>,
    /// Accepted, as the original accepts it; `out` has no use for it.
    #[serde(rename = "version")]
    _version: Option<serde::de::IgnoredAny>,
    params: Option<PutParams>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutParams {
    version: Option<String>,
    print_env: Option<bool>,
    file: Option<String>,
}

#[derive(Serialize)]
struct VersionResponse {
    version: MockVersion,
    metadata: Option<Vec<MetadataField>>,
}

/// Why a mock command failed, as the original words it where it has the case.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    #[error("the directory argument is missing")]
    NoDirectory,
    #[error("invalid payload: {0}")]
    InvalidRequest(#[source] serde_json::Error),
    #[error("cannot encode the response: {0}")]
    EncodeResponse(#[source] serde_json::Error),
    #[error("malformed check_delay duration ({delay}): {source}")]
    InvalidCheckDelay {
        delay: String,
        #[source]
        source: InvalidDuration,
    },
    /// The source's `check_failure` asks `check` to fail with this message.
    #[error("intentionally failing to check: {0}")]
    CheckFailureRequested(String),
    #[error("cannot find atc's executable: {0}")]
    NoExecutable(#[source] io::Error),
    #[error("failed to make {path} executable: {source}")]
    MakeExecutable {
        path: String,
        #[source]
        source: io::Error,
    },
    /// `dir` as the request named it, not where DEST is on this host.
    #[error("failed to create directory '{}': {source}", .dir.display())]
    CreateDirectory {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write to file '{path}': {source}")]
    WriteFile {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("error reading version from file {file}: {source}")]
    ReadVersionFile {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("no version specified")]
    NoVersion,
    #[error(transparent)]
    PathLeavesBase(#[from] PathLeavesBase),
}

pub fn run(command: Command, dir: Option<&Path>, request: &[u8], log: &mut dyn Write) -> Result<Value, MockError> {
    match (command, dir) {
        (Command::Check, _) => check(decode(request)?, log),
        (Command::In, Some(dest)) => get(decode(request)?, dest, log),
        (Command::Out, Some(src)) => put(decode(request)?, src, log),
        (_, None) => Err(MockError::NoDirectory),
    }
}

fn decode<T: DeserializeOwned>(request: &[u8]) -> Result<T, MockError> {
    serde_json::from_slice(request).map_err(MockError::InvalidRequest)
}

fn to_json(value: impl Serialize) -> Result<Value, MockError> {
    serde_json::to_value(value).map_err(MockError::EncodeResponse)
}

fn say(log: &mut dyn Write, message: &str) {
    let _ = writeln!(log, "{message}");
}

fn check(request: CheckRequest, log: &mut dyn Write) -> Result<Value, MockError> {
    let source = request.source.unwrap_or_default();
    if let Some(message) = source.log.as_deref().filter(|m| !m.is_empty()) {
        say(log, message);
    }
    if let Some(delay) = source.check_delay.as_deref().filter(|d| !d.is_empty()) {
        let delay = crate::duration::parse(delay)
            .map_err(|source| MockError::InvalidCheckDelay { delay: delay.to_string(), source })?;
        std::thread::sleep(delay);
    }
    if let Some(failure) = source.check_failure.as_deref().filter(|f| !f.is_empty()) {
        return Err(MockError::CheckFailureRequested(failure.to_string()));
    }
    let versions = if let Some(forced) = source.force_version.clone().filter(|v| !v.is_empty()) {
        vec![MockVersion::new(forced)]
    } else if let Some(given) = request.version {
        vec![given]
    } else if source.no_initial_version != Some(true) {
        vec![MockVersion::new(source.initial_version())]
    } else {
        Vec::new()
    };
    to_json(versions)
}

fn get(request: InRequest, dest: &Path, log: &mut dyn Write) -> Result<Value, MockError> {
    let source = request.source.unwrap_or_default();
    let params = request.params.unwrap_or_default();
    let version = request.version.unwrap_or_default();
    let version_text = version.version.clone().unwrap_or_default();
    if let Some(message) = source.log.as_deref().filter(|m| !m.is_empty()) {
        say(log, message);
    }
    write(dest, "privileged", b"false\n")?;
    say(log, &format!("fetching version: {version_text}"));
    write(dest, "version", format!("{version_text}\n").as_bytes())?;

    if source.mirror_self == Some(true) || params.mirror_self_via_params == Some(true) {
        say(log, "mirroring self image");
        mirror_self(dest, &version_text)?;
    }

    let mut files = source.create_files.clone().unwrap_or_default();
    files.extend(params.create_files_via_params.unwrap_or_default());
    for (path, content) in files {
        let text = match content {
            Value::String(text) => text,
            other => other.to_string(),
        };
        // Lets fixtures write `((vars))` that the pipeline itself would interpolate.
        let text = text.replace("START_VAR", "((").replace("END_VAR", "))");
        write(dest, &path, text.as_bytes())?;
    }
    to_json(VersionResponse { version, metadata: source.metadata })
}

/// An image of this very resource type for the local runtime: resource
/// executables that run `atc resource mock`, and the image's environment.
fn mirror_self(dest: &Path, version: &str) -> Result<(), MockError> {
    let atc = std::env::current_exe().map_err(MockError::NoExecutable)?;
    let quoted = format!("'{}'", atc.to_string_lossy().replace('\'', r"'\''"));
    for command in ["check", "in", "out"] {
        let path = format!("rootfs/opt/resource/{command}");
        write(dest, &path, format!("#!/bin/sh\nexec {quoted} resource mock {command} \"$@\"\n").as_bytes())?;
        let full = safe_join(dest, &path)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o755))
            .map_err(|source| MockError::MakeExecutable { path, source })?;
    }
    let metadata = serde_json::json!({ "env": [format!("MIRRORED_VERSION={version}")], "user": "root" });
    write(dest, "metadata.json", format!("{metadata}\n").as_bytes())
}

fn write(dest: &Path, path: &str, content: &[u8]) -> Result<(), MockError> {
    let full = safe_join(dest, path)?;
    if let Some(parent) = full.parent() {
        let named = Path::new(path).parent().unwrap_or(Path::new(""));
        std::fs::create_dir_all(parent)
            .map_err(|source| MockError::CreateDirectory { dir: named.to_path_buf(), source })?;
    }
    std::fs::write(&full, content).map_err(|source| MockError::WriteFile { path: path.to_string(), source })
}

fn put(request: OutRequest, src: &Path, log: &mut dyn Write) -> Result<Value, MockError> {
    let source = request.source.unwrap_or_default();
    let params = request.params.unwrap_or_default();
    if let Some(message) = source.log.as_deref().filter(|m| !m.is_empty()) {
        say(log, message);
    }
    let given = params.version.clone().filter(|v| !v.is_empty());
    let file = params.file.clone().filter(|f| !f.is_empty());
    let version = match (given, file) {
        (Some(version), _) => version,
        (None, Some(file)) => {
            let path = safe_join(src, &file)?;
            // Read as is, trailing newline included, as the original does.
            let bytes =
                std::fs::read(&path).map_err(|source| MockError::ReadVersionFile { file: file.clone(), source })?;
            String::from_utf8_lossy(&bytes).into_owned()
        }
        (None, None) => return Err(MockError::NoVersion),
    };
    say(log, &format!("pushing version: {version}"));
    if params.print_env == Some(true) {
        for (key, value) in std::env::vars_os() {
            say(log, &format!("env: {}={}", key.to_string_lossy(), value.to_string_lossy()));
        }
    }
    to_json(VersionResponse { version: MockVersion::new(version), metadata: source.metadata })
}
