//! A configuration split the way the database stores it: the whole
//! document, and each job, resource and resource type on its own.

use std::collections::HashSet;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::job_patterns::JobPatterns;
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
        .zip(group_names(pipeline))
        .map(|(job, groups)| JobSpec {
            name: text(job, "name"),
            old_name: Some(text(job, "old_name")).filter(|n| !n.is_empty()),
            config: job.clone(),
            public: flag(job, "public"),
            disable_manual_trigger: flag(job, "disable_manual_trigger"),
            groups,
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

/// The names of the groups listing each job (by the job's position), each
/// group once, in order.
fn group_names(pipeline: &Pipeline) -> Vec<Vec<String>> {
    let mut patterns = JobPatterns::new(pipeline.jobs.iter().map(|job| job.name.as_str()));
    let mut names = vec![Vec::new(); pipeline.jobs.len()];
    for group in &pipeline.groups {
        let mut listed = HashSet::new();
        for pattern in &group.jobs {
            // Validation held these patterns to the limits of matching them.
            for &job in patterns.jobs(pattern).unwrap_or_default().iter() {
                if listed.insert(job) {
                    names[job].push(group.name.clone());
                }
            }
        }
    }
    names
}

/// Identifies a version history: the same type and source share one.
fn source_digest(object: &Value) -> String {
    let canonical = json!({ "type": object.get("type"), "source": object.get("source") }).to_string();
    Sha256::digest(canonical.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}
