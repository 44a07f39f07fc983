//! A task's `sidecars:` (an atc extension; Concourse has none): containers
//! that run beside the task's process for its whole life and share its
//! network, so the task reaches them on `localhost`. The fields are those of
//! a Kubernetes container, spelled as Kubernetes spells them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Container names the Kubernetes runtime gives its own containers.
const RESERVED_NAMES: [&str; 2] = ["main", "fetch-inputs"];
const PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TaskSidecar {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub image: String,
    /// The image's entrypoint instead of its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<SidecarEnv>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<SidecarPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<SidecarResources>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SidecarEnv {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SidecarPort {
    #[serde(default)]
    pub container_port: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
}

impl SidecarPort {
    /// The protocol, TCP when none is given (as in Kubernetes).
    pub fn protocol(&self) -> &str {
        if self.protocol.is_empty() { "TCP" } else { &self.protocol }
    }
}

/// Kubernetes quantities (`100m`, `64Mi`, `1`) by resource name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SidecarResources {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, Value>,
}

impl SidecarResources {
    /// A quantity as Kubernetes takes it: a string, or a number's text.
    pub fn quantity(value: &Value) -> Option<String> {
        match value {
            Value::String(text) if is_quantity(text) => Some(text.clone()),
            Value::Number(number) if is_quantity(&number.to_string()) => Some(number.to_string()),
            _ => None,
        }
    }
}

/// Everything wrong with `sidecars`, each problem naming the sidecar (by
/// position when it has no name) and its field.
pub fn problems(sidecars: &[TaskSidecar]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for (i, sidecar) in sidecars.iter().enumerate() {
        let which = if sidecar.name.is_empty() {
            format!("sidecar in position {i}")
        } else {
            format!("sidecar '{}'", sidecar.name)
        };
        if sidecar.name.is_empty() {
            problems.push(format!("{which} is missing a name"));
        } else if !is_dns_label(&sidecar.name) {
            problems.push(format!(
                "{which}: name must be at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
            ));
        } else if RESERVED_NAMES.contains(&sidecar.name.as_str()) {
            problems.push(format!("{which}: name '{}' is atc's own container's", sidecar.name));
        } else if !names.insert(sidecar.name.as_str()) {
            problems.push(format!("{which}: name is used by another sidecar"));
        }
        if sidecar.image.trim().is_empty() {
            problems.push(format!("{which} is missing an image"));
        }
        for (j, env) in sidecar.env.iter().enumerate() {
            if env.name.is_empty() || env.name.contains('=') {
                problems.push(format!("{which}: env in position {j} needs a name without '='"));
            }
        }
        let mut ports = BTreeSet::new();
        for (j, port) in sidecar.ports.iter().enumerate() {
            if port.container_port == 0 {
                problems.push(format!("{which}: ports in position {j} needs a containerPort from 1 to 65535"));
            } else if !ports.insert((port.container_port, port.protocol())) {
                problems.push(format!("{which}: containerPort {} is listed twice", port.container_port));
            }
            if !port.protocol.is_empty() && !PROTOCOLS.contains(&port.protocol.as_str()) {
                problems.push(format!(
                    "{which}: ports in position {j} has protocol '{}', not one of {}",
                    port.protocol,
                    PROTOCOLS.join(", ")
                ));
            }
        }
        if let Some(resources) = &sidecar.resources {
            for (kind, quantities) in [("limits", &resources.limits), ("requests", &resources.requests)] {
                for (resource, value) in quantities {
                    if SidecarResources::quantity(value).is_none() {
                        problems.push(format!(
                            "{which}: resources.{kind}.{resource} is '{}', not a quantity such as 100m, 64Mi or 1",
                            value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string())
                        ));
                    }
                }
            }
        }
    }
    problems
}

fn is_dns_label(name: &str) -> bool {
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    name.len() <= 63
        && name.bytes().all(|b| alphanumeric(b) || b == b'-')
        && name.bytes().next().is_some_and(alphanumeric)
        && name.bytes().last().is_some_and(alphanumeric)
}

/// A Kubernetes quantity: a decimal number with an optional binary (`Ki`
/// .. `Ei`) or decimal (`n`, `u`, `m`, `k`, `M` .. `E`) suffix or exponent.
fn is_quantity(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let digits_end = unsigned.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(digits_end);
    let number_ok = number.bytes().filter(|b| *b == b'.').count() <= 1 && number.bytes().any(|b| b.is_ascii_digit());
    let exponent = |rest: &str| {
        let rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
    };
    let suffix_ok = matches!(
        suffix,
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E"
    ) || suffix.strip_prefix(['e', 'E']).is_some_and(exponent);
    number_ok && suffix_ok
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::TaskConfig;

    fn sidecars(value: Value) -> Vec<TaskSidecar> {
        TaskConfig::from_value(json!({"platform": "linux", "run": {"path": "x"}, "sidecars": value})).unwrap().sidecars
    }

    #[test]
    fn a_whole_sidecar_is_read_with_kubernetes_spelling() {
        let read = sidecars(json!([{
            "name": "db", "image": "postgres:16", "command": ["postgres"], "args": ["-p", "5433"],
            "env": [{"name": "POSTGRES_PASSWORD", "value": "x"}],
            "ports": [{"containerPort": 5433, "name": "pg"}],
            "resources": {"limits": {"memory": "256Mi", "cpu": 1}, "requests": {"cpu": "100m"}},
            "workingDir": "/var/lib/postgresql",
        }]));
        assert_eq!(read[0].working_dir, "/var/lib/postgresql");
        assert_eq!(read[0].ports[0].container_port, 5433);
        assert!(problems(&read).is_empty(), "{:?}", problems(&read));
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = sidecars(json!([
            {"image": "x"},
            {"name": "Web", "image": ""},
            {"name": "main", "image": "x"},
            {"name": "db", "image": "x", "env": [{"value": "v"}], "ports": [{"containerPort": 0}, {"containerPort": 80, "protocol": "HTTP"}]},
            {"name": "db", "image": "x", "resources": {"limits": {"memory": "lots"}}},
        ]));
        let found = problems(&bad);
        for expected in [
            "sidecar in position 0 is missing a name",
            "sidecar 'Web': name must be",
            "sidecar 'Web' is missing an image",
            "sidecar 'main': name 'main' is atc's own container's",
            "sidecar 'db': env in position 0 needs a name",
            "sidecar 'db': ports in position 0 needs a containerPort",
            "sidecar 'db': ports in position 1 has protocol 'HTTP'",
            "sidecar 'db': name is used by another sidecar",
            "sidecar 'db': resources.limits.memory is 'lots'",
        ] {
            assert!(found.iter().any(|p| p.starts_with(expected)), "{expected} not in {found:#?}");
        }
        assert_eq!(found.len(), 9, "{found:#?}");
    }

    #[test]
    fn misspelt_or_mistyped_fields_are_refused_with_their_path() {
        let config = |sidecar: Value| {
            TaskConfig::from_value(json!({"platform": "linux", "run": {"path": "x"}, "sidecars": [sidecar]}))
                .unwrap_err()
                .to_string()
        };
        let unknown = config(json!({"name": "a", "image": "x", "working_dir": "/"}));
        assert!(unknown.starts_with("sidecars[0]") && unknown.contains("working_dir"), "{unknown}");
        let port = config(json!({"name": "a", "image": "x", "ports": [{"containerPort": 70000}]}));
        assert!(port.starts_with("sidecars[0].ports[0].containerPort"), "{port}");
    }

    #[test]
    fn quantities_are_kubernetes_quantities() {
        for good in ["1", "0.5", "100m", "64Mi", "1Gi", "1e3", "+2", ".5"] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["", "lots", "1GB", "1.2.3", "Mi", "1e", "m"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
