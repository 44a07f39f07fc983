//! The `load_var` step: a file of an artifact becomes a local var
//! (`((.:name))`) for the steps after it.

use serde_json::Value;

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

pub(crate) fn decode(format: &str, bytes: &[u8]) -> Result<Value, String> {
    let text = || String::from_utf8(bytes.to_vec()).map_err(|_| "the file is not UTF-8 text".to_string());
    match format {
        "json" => serde_json::from_slice(bytes).map_err(|e| crate::nesting::json_error("JSON", &e)),
        "yaml" | "yml" => crate::config::yaml_value(bytes).map_err(|e| format!("invalid YAML: {e}")),
        "trim" => Ok(Value::String(text()?.trim().to_string())),
        "raw" => Ok(Value::String(text()?)),
        other => Err(format!("unknown format '{other}': expected json, yaml, yml, trim or raw")),
    }
}

pub async fn run(plan_id: &str, plan: &LoadVarPlan, ctx: &StepContext) -> Outcome {
    let loaded = async {
        let bytes = super::artifacts::read_file(ctx, &plan.file).await?;
        decode(format_of(plan), &bytes).map_err(|e| format!("load_var {}: {} ({})", plan.name, e, plan.file))
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
        Err(message) => {
            ctx.build.step_error(plan_id, &message);
            Outcome::Errored(message)
        }
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
