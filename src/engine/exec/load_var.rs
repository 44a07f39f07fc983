//! The `load_var` step: a file of an artifact becomes a local var
//! (`((.:name))`) for the steps after it.

use serde_json::Value;

use super::StepError;
use super::delegate::StepDelegate;
use super::{Outcome, StepContext};
use crate::engine::plan::LoadVarPlan;

/// The format to read a file in: as given, else by its extension, else raw.
fn format_of(plan: &LoadVarPlan) -> &str {
    if !plan.format.is_empty() {
        return &plan.format;
    }
    match plan.file.rsplit('.').next() {
        Some("json") => "json",
        Some("yml" | "yaml") => "yaml",
        _ => "raw",
    }
}

/// Why a file is not a value in the format it is read as.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UndecodableFile {
    #[error("the file is not UTF-8 text")]
    NotText,
    /// What is wrong with the JSON, where (the parser's words may quote
    /// the file, which is the build's own).
    #[error("{0}")]
    Json(String),
    #[error("invalid YAML: {0}")]
    Yaml(#[from] crate::config::ParseError),
    #[error("unknown format '{0}': expected json, yaml, yml, trim or raw")]
    UnknownFormat(String),
}

pub(crate) fn decode(format: &str, bytes: &[u8]) -> Result<Value, UndecodableFile> {
    let text = || String::from_utf8(bytes.to_vec()).map_err(|_| UndecodableFile::NotText);
    match format {
        "json" => {
            serde_json::from_slice(bytes).map_err(|e| UndecodableFile::Json(crate::nesting::json_error("JSON", &e)))
        }
        "yaml" | "yml" => Ok(crate::config::yaml_value(bytes)?),
        "trim" => Ok(Value::String(text()?.trim().to_string())),
        "raw" => Ok(Value::String(text()?)),
        other => Err(UndecodableFile::UnknownFormat(other.to_string())),
    }
}

pub async fn run(plan: &LoadVarPlan, delegate: &StepDelegate, ctx: &StepContext) -> Outcome {
    let loaded = async {
        let bytes = super::artifacts::read_file(ctx, &plan.file).await?;
        decode(format_of(plan), &bytes)
            .map_err(|reason| StepError::Invalid(format!("load_var {}: {reason} ({})", plan.name, plan.file)))
    }
    .await;
    match loaded {
        Ok(value) => {
            if !plan.reveal {
                ctx.build.remember_secret(&value);
            }
            ctx.scope.set_local_var(&plan.name, value);
            Outcome::Succeeded
        }
        Err(err) => delegate.errored(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn formats_follow_the_extension_unless_given() {
        let plan = |file: &str, format: &str| LoadVarPlan {
            name: "v".into(),
            file: file.into(),
            format: format.into(),
            reveal: false,
        };
        assert_eq!(format_of(&plan("out/v.json", "")), "json");
        assert_eq!(format_of(&plan("out/v.yml", "")), "yaml");
        assert_eq!(format_of(&plan("out/version", "")), "raw");
        assert_eq!(format_of(&plan("out/v.json", "trim")), "trim");
        assert_eq!(decode("json", br#"{"a":1}"#).unwrap(), json!({ "a": 1 }));
        assert_eq!(decode("yaml", b"a: [1, 2]").unwrap(), json!({ "a": [1, 2] }));
        assert_eq!(decode("trim", b"  1.2.3\n").unwrap(), json!("1.2.3"));
        assert_eq!(decode("raw", b"1.2.3\n").unwrap(), json!("1.2.3\n"));
        assert!(decode("json", b"{").is_err());
    }
}
