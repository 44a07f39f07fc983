//! A configuration split the way the database stores it: the whole
//! document, and each job, resource and resource type on its own.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::glob::glob_match;
use super::model::Pipeline;
use crate::db::{JobSpec, PipelineSpec, ResourceSpec, ResourceTypeSpec};

/// A configuration that has no JSON form: a bug, since it was read from one.
#[derive(Debug, thiserror::Error)]
#[error("config does not serialize: {0}")]
pub struct UnserializableConfig(#[source] serde_json::Error);

/// Works on the configuration's JSON form, which is also what the API
/// returns and what jobs are compiled from.
pub fn storage_spec(pipeline: &Pipeline) -> Result<PipelineSpec, UnserializableConfig> {
    let json = serde_json::to_value(pipeline).map_err(UnserializableConfig)?;
    let list = |key: &str| json.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let flag = |value: &Value, key: &str| value.get(key).and_then(Value::as_bool).unwrap_or(false);
    let groups = list("groups");

    let jobs = list("jobs")
        .iter()
        .map(|job| {
            let name = text(job, "name");
            JobSpec {
                old_name: Some(text(job, "old_name")).filter(|n| !n.is_empty()),
                config: job.clone(),
                public: flag(job, "public"),
                disable_manual_trigger: flag(job, "disable_manual_trigger"),
                groups: groups
                    .iter()
                    .filter(|group| {
                        group.get("jobs").and_then(Value::as_array).is_some_and(|patterns| {
                            patterns.iter().filter_map(Value::as_str).any(|p| glob_match(p, &name))
                        })
                    })
                    .map(|group| text(group, "name"))
                    .collect(),
                name,
            }
        })
        .collect();
    let resources = list("resources")
        .iter()
        .map(|resource| ResourceSpec {
            name: text(resource, "name"),
            old_name: Some(text(resource, "old_name")).filter(|n| !n.is_empty()),
            type_: text(resource, "type"),
            config: resource.clone(),
            config_hash: source_digest(resource),
        })
        .collect();
    let resource_types = list("resource_types")
        .iter()
        .map(|resource_type| ResourceTypeSpec {
            name: text(resource_type, "name"),
            type_: text(resource_type, "type"),
            config: resource_type.clone(),
            config_hash: source_digest(resource_type),
        })
        .collect();
    Ok(PipelineSpec {
        groups: Value::Array(groups),
        display: json.get("display").cloned(),
        config: json,
        jobs,
        resources,
        resource_types,
    })
}

/// Identifies a version history: the same type and source share one.
fn source_digest(object: &Value) -> String {
    let canonical = json!({ "type": object.get("type"), "source": object.get("source") }).to_string();
    Sha256::digest(canonical.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}
