//! Task configuration: what a task runs, with which inputs and outputs.
//! Given inline (`config:`) or in a file of an artifact (`file:`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::parse::ParseError;
use super::sidecar::{self, TaskSidecar};
use super::step::at_path;

/// Why a task config cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InvalidTaskConfig {
    #[error(transparent)]
    Syntax(#[from] ParseError),
    /// A field does not fit; `path` is where (`.` for the config as a whole).
    #[error("{}{source}", at_path(.path))]
    Field {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub platform: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rootfs_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_resource: Option<ImageResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_limits: Option<ContainerLimits>,
    /// Environment of the process; values may be strings, numbers or booleans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
    #[serde(default)]
    pub run: TaskRun,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<TaskInput>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<TaskOutput>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caches: Vec<TaskCache>,
    /// Containers beside the process, sharing its network (an atc extension).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sidecars: Vec<TaskSidecar>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ImageResource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub source: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ContainerLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TaskRun {
    #[serde(default)]
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dir: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TaskOutput {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TaskCache {
    #[serde(default)]
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ttl: String,
}

impl TaskConfig {
    /// Reads a task config (`file:` contents, YAML or JSON).
    pub fn parse(bytes: &[u8]) -> Result<TaskConfig, InvalidTaskConfig> {
        TaskConfig::from_value(super::parse::yaml_value(bytes)?)
    }

    pub fn from_value(value: Value) -> Result<TaskConfig, InvalidTaskConfig> {
        serde_path_to_error::deserialize(value)
            .map_err(|err| InvalidTaskConfig::Field { path: err.path().to_string(), source: err.into_inner() })
    }

    /// Everything wrong with the config, as Concourse checks it.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.platform.is_empty() {
            problems.push("missing 'platform'".to_string());
        }
        for (i, input) in self.inputs.iter().enumerate() {
            if input.name.is_empty() {
                problems.push(format!("input in position {i} is missing a name"));
            }
        }
        for (i, output) in self.outputs.iter().enumerate() {
            if output.name.is_empty() {
                problems.push(format!("output in position {i} is missing a name"));
            }
        }
        for cache in &self.caches {
            if cache.path.is_empty() {
                problems.push("cache is missing a path".to_string());
            }
            if !cache.ttl.is_empty() {
                match crate::duration::parse(&cache.ttl) {
                    Ok(ttl) if ttl.as_secs() >= 1 => {}
                    Ok(_) => problems.push(format!("cache ttl must be at least 1s, got '{}'", cache.ttl)),
                    Err(_) => problems.push(format!("invalid cache ttl '{}'", cache.ttl)),
                }
            }
        }
        problems.extend(sidecar::problems(&self.sidecars));
        problems
    }

    /// The environment from `params`: strings as they are, numbers and
    /// booleans as their JSON text, null as empty.
    pub fn environment(params: &Map<String, Value>) -> Vec<(String, String)> {
        params
            .iter()
            .map(|(key, value)| {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (key.clone(), text)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_and_checks_task_configs() {
        let config = TaskConfig::parse(
            b"platform: linux\nrun: {path: sh, args: [-c, 'echo hi']}\ninputs: [{name: src}]\nparams: {N: 1, FLAG: true}\n",
        )
        .unwrap();
        assert!(config.problems().is_empty());
        assert_eq!(
            TaskConfig::environment(config.params.as_ref().unwrap()),
            vec![("FLAG".to_string(), "true".to_string()), ("N".to_string(), "1".to_string())]
        );
        let bad =
            TaskConfig::from_value(json!({ "run": {}, "inputs": [{}], "caches": [{ "path": "c", "ttl": "10ms" }] }))
                .unwrap();
        let problems = bad.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        let unknown = TaskConfig::from_value(json!({ "platform": "linux", "run": { "path": "x", "arg": [] } }))
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("run") && unknown.contains("arg"), "{unknown}");
    }
}
