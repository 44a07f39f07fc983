//! The pipeline configuration model, field for field as Concourse's JSON
//! names it (so `GET .../config` returns what `fly` expects).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::step::{GetStep, PutStep, Step, StepKind};

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub var_sources: Vec<VarSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_types: Vec<ResourceType>,
    /// Accepted for compatibility; prototypes are not run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prototypes: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<Job>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<Display>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Group {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct VarSource {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub config: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub old_name: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub public: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub webhook_token: String,
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub source: Value,
    /// A duration, or `never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_every: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub check_timeout: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// A pinned version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub expose_build_created_by: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResourceType {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub source: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_every: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Display {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub background_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub background_filter: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BuildLogRetention {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub builds: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub minimum_succeeded_builds: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub days: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Job {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub old_name: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub public: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_manual_trigger: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_reruns: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub serial: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub interruptible: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serial_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_in_flight: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub build_logs_to_retain: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_log_retention: Option<BuildLogRetention>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_abort: Option<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensure: Option<Step>,
    #[serde(default)]
    pub plan: Vec<Step>,
}

/// A `get` of a job: what the scheduler resolves a version for.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInput {
    pub name: String,
    pub resource: String,
    pub passed: Vec<String>,
    pub trigger: bool,
    /// `latest`, `every` or a pinned version, as configured.
    pub version: Option<Value>,
    pub params: Option<Value>,
    pub tags: Vec<String>,
}

/// A `put` of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutput {
    pub name: String,
    pub resource: String,
}

impl Job {
    /// Every step of the job, its hooks' too, outer steps first.
    pub fn walk<'a>(&'a self, visit: &mut dyn FnMut(&'a Step)) {
        for step in &self.plan {
            step.walk(visit);
        }
        for hook in
            [&self.on_success, &self.on_failure, &self.on_abort, &self.on_error, &self.ensure].into_iter().flatten()
        {
            hook.walk(visit);
        }
    }

    fn gets(&self) -> Vec<(&GetStep, Vec<String>)> {
        let mut gets = Vec::new();
        self.walk(&mut |step| {
            if let StepKind::Get(get) = &step.kind {
                gets.push((get, step.tags.clone()));
            }
        });
        gets
    }

    pub fn inputs(&self) -> Vec<JobInput> {
        self.gets()
            .into_iter()
            .map(|(get, tags)| JobInput {
                name: get.name.clone(),
                resource: get.resource_name().to_string(),
                passed: get.passed.clone(),
                trigger: get.trigger,
                version: get.version.clone(),
                params: get.params.clone(),
                tags,
            })
            .collect()
    }

    pub fn outputs(&self) -> Vec<JobOutput> {
        let mut puts: Vec<&PutStep> = Vec::new();
        self.walk(&mut |step| {
            if let StepKind::Put(put) = &step.kind {
                puts.push(put);
            }
        });
        puts.into_iter()
            .map(|put| JobOutput { name: put.name.clone(), resource: put.resource_name().to_string() })
            .collect()
    }

    /// How many builds may run at once: 1 when serial (or in serial
    /// groups), else `max_in_flight`; 0 means no limit.
    pub fn max_in_flight(&self) -> i64 {
        if self.serial || !self.serial_groups.is_empty() { 1 } else { self.max_in_flight.max(0) }
    }
}

impl Pipeline {
    pub fn resource(&self, name: &str) -> Option<&ResourceConfig> {
        self.resources.iter().find(|r| r.name == name)
    }

    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }
}
