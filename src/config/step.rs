//! Steps of a job's plan. A step is one map in the YAML: one core step
//! (`get`, `put`, `task`, `set_pipeline`, `load_var`, `try`, `do`,
//! `in_parallel`) plus modifiers around it (`timeout`, `attempts`, `tags`,
//! `across`, the hooks). [`Step`] keeps the core step as [`StepKind`] and
//! the modifiers as fields, so code that walks steps matches on one enum
//! and reads modifiers without unwrapping layers; serializing puts it all
//! back into one map, as Concourse does.

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::task::TaskConfig;

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    pub timeout: Option<String>,
    /// Kept signed so that a zero or negative count reaches validation.
    pub attempts: Option<i64>,
    pub tags: Vec<String>,
    pub across: Option<Vec<AcrossVar>>,
    /// `fail_fast` of `across`.
    pub across_fail_fast: bool,
    pub on_success: Option<Box<Step>>,
    pub on_failure: Option<Box<Step>>,
    pub on_abort: Option<Box<Step>>,
    pub on_error: Option<Box<Step>>,
    pub ensure: Option<Box<Step>>,
    /// Keys that belong to no step type here (reported by validation).
    pub unknown_fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    Get(GetStep),
    Put(PutStep),
    Task(Box<TaskStep>),
    SetPipeline(SetPipelineStep),
    LoadVar(LoadVarStep),
    Try(Box<Step>),
    Do(Vec<Step>),
    InParallel(InParallelStep),
    /// A prototype's message (`run: msg`, `type: prototype`); accepted and
    /// validated, not run.
    Run(RunStep),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct GetStep {
    #[serde(rename = "get")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    /// `latest`, `every`, or a version (a map of strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passed: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub trigger: bool,
}

impl GetStep {
    pub fn resource_name(&self) -> &str {
        if self.resource.is_empty() { &self.name } else { &self.resource }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PutStep {
    #[serde(rename = "put")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// `all`, `detect`, or a list of artifact names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get_params: Option<Value>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_get: bool,
}

impl PutStep {
    pub fn resource_name(&self) -> &str {
        if self.resource.is_empty() { &self.name } else { &self.resource }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TaskStep {
    #[serde(rename = "task")]
    pub name: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub hermetic: bool,
    #[serde(rename = "file", default, skip_serializing_if = "String::is_empty")]
    pub config_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_limits: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<TaskConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vars: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_mapping: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_mapping: Option<std::collections::BTreeMap<String, String>>,
    #[serde(rename = "image", default, skip_serializing_if = "String::is_empty")]
    pub image_artifact: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SetPipelineStep {
    #[serde(rename = "set_pipeline")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub team: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vars: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub var_files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_vars: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunStep {
    #[serde(rename = "run")]
    pub message: String,
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_limits: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LoadVarStep {
    #[serde(rename = "load_var")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub format: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub reveal: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct InParallelStep {
    pub steps: Vec<Step>,
    pub limit: Option<i64>,
    pub fail_fast: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AcrossVar {
    pub var: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Value>,
    /// A positive number, or `"all"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<Value>,
}

/// Keys of the core steps, in the order that decides a step's type when a
/// map has more than one (the others are then unknown fields).
const CORE_KEYS: [&str; 9] = ["run", "task", "put", "get", "set_pipeline", "load_var", "try", "do", "in_parallel"];
const MODIFIER_KEYS: [&str; 10] = [
    "timeout",
    "attempts",
    "tags",
    "across",
    "fail_fast",
    "on_success",
    "on_failure",
    "on_abort",
    "on_error",
    "ensure",
];

fn core_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "get" => &["get", "resource", "version", "params", "passed", "trigger"],
        "put" => &["put", "resource", "params", "inputs", "get_params", "no_get"],
        "task" => &[
            "task",
            "privileged",
            "hermetic",
            "file",
            "container_limits",
            "config",
            "params",
            "vars",
            "input_mapping",
            "output_mapping",
            "image",
        ],
        "set_pipeline" => &["set_pipeline", "file", "team", "vars", "var_files", "instance_vars"],
        "load_var" => &["load_var", "file", "format", "reveal"],
        "try" => &["try"],
        "do" => &["do"],
        "in_parallel" => &["in_parallel"],
        "run" => &["run", "type", "params", "privileged", "container_limits"],
        _ => &[],
    }
}

/// What is wrong with a step map. `Display` leads with the key path to the
/// problem (`do[0]: task: run: ...`).
#[derive(Debug, thiserror::Error)]
pub enum InvalidStep {
    #[error("a step must be a map, got {0}")]
    NotAMap(Value),
    /// Only modifiers (`timeout`, `attempts`, ...), no `get`, `task`, ...
    #[error("no core step type declared (e.g. get, put, task, etc.)")]
    NoCoreType,
    #[error("no step configured")]
    NoStep,
    /// `key` holds something other than the kind of value it takes.
    #[error("{key}: expected {expected}, got {value}")]
    WrongType { key: &'static str, expected: &'static str, value: Value },
    #[error("{0}: expected a list of steps")]
    NotAList(&'static str),
    /// The fields of a step type (`get`, `task`, ...) do not deserialize;
    /// `path` is where inside them (`.` for the fields as a whole).
    #[error("{step_type}: {}{source}", at_path(.path))]
    Fields {
        step_type: &'static str,
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("across: {path}: {source}")]
    Across {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// Keys an `in_parallel` map does not take, quoted.
    #[error("in_parallel: unknown fields [{}]", .0.join(" "))]
    UnknownParallelFields(Vec<String>),
    /// A step inside this one (`try`, `do[1]`, `on_failure`) is invalid.
    #[error("{at}: {inner}")]
    Inner { at: String, inner: Box<InvalidStep> },
}

/// `path: `, or nothing for the value as a whole (`.`).
pub(super) fn at_path(path: &str) -> String {
    if path == "." { String::new() } else { format!("{path}: ") }
}

/// The `keys` of a step map as `T`. A null field counts as absent, as in
/// Concourse (`team: ((team))` with an empty var means "this team").
fn typed<T: serde::de::DeserializeOwned>(
    map: &Map<String, Value>,
    keys: &[&str],
    step_type: &'static str,
) -> Result<T, InvalidStep> {
    let subset: Map<String, Value> = map
        .iter()
        .filter(|(k, v)| keys.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_path_to_error::deserialize(Value::Object(subset)).map_err(|err| InvalidStep::Fields {
        step_type,
        path: err.path().to_string(),
        source: err.into_inner(),
    })
}

fn inner_step(value: &Value, at: String) -> Result<Step, InvalidStep> {
    Step::from_value(value).map_err(|inner| InvalidStep::Inner { at, inner: Box::new(inner) })
}

fn boxed_step(value: &Value, key: &str) -> Result<Box<Step>, InvalidStep> {
    inner_step(value, key.to_string()).map(Box::new)
}

fn step_list(value: &Value, key: &'static str) -> Result<Vec<Step>, InvalidStep> {
    let items = value.as_array().ok_or(InvalidStep::NotAList(key))?;
    items.iter().enumerate().map(|(i, item)| inner_step(item, format!("{key}[{i}]"))).collect()
}

impl Step {
    /// Reads one step map; errors say which key was wrong.
    pub fn from_value(value: &Value) -> Result<Step, InvalidStep> {
        let map = value.as_object().ok_or_else(|| InvalidStep::NotAMap(value.clone()))?;
        let core = CORE_KEYS.iter().find(|key| map.contains_key(**key)).copied();
        let Some(core) = core else {
            let known = map.keys().any(|k| MODIFIER_KEYS.contains(&k.as_str()));
            return Err(if known { InvalidStep::NoCoreType } else { InvalidStep::NoStep });
        };
        let kind = match core {
            "get" => StepKind::Get(typed(map, core_fields("get"), "get")?),
            "put" => StepKind::Put(typed(map, core_fields("put"), "put")?),
            "task" => StepKind::Task(Box::new(typed(map, core_fields("task"), "task")?)),
            "set_pipeline" => StepKind::SetPipeline(typed(map, core_fields("set_pipeline"), "set_pipeline")?),
            "load_var" => StepKind::LoadVar(typed(map, core_fields("load_var"), "load_var")?),
            "try" => StepKind::Try(boxed_step(&map["try"], "try")?),
            "do" => StepKind::Do(step_list(&map["do"], "do")?),
            "run" => StepKind::Run(typed(map, core_fields("run"), "run")?),
            _ => StepKind::InParallel(in_parallel(&map["in_parallel"])?),
        };
        let wrong_type = |key, expected, value: &Value| InvalidStep::WrongType { key, expected, value: value.clone() };
        let text = |key: &'static str| -> Result<Option<String>, InvalidStep> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(wrong_type(key, "a string", other)),
            }
        };
        let hook = |key: &str| map.get(key).map(|value| boxed_step(value, key)).transpose();
        let attempts = match map.get("attempts") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_i64().ok_or_else(|| wrong_type("attempts", "a number", value))?),
        };
        let tags = match map.get("tags") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => {
                serde_json::from_value(value.clone()).map_err(|_| wrong_type("tags", "a list of strings", value))?
            }
        };
        let across = match map.get("across") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                serde_path_to_error::deserialize(value.clone())
                    .map_err(|err| InvalidStep::Across { path: err.path().to_string(), source: err.into_inner() })?,
            ),
        };
        let known: Vec<&str> = core_fields(core).iter().chain(MODIFIER_KEYS.iter()).copied().collect();
        let mut unknown_fields: Vec<String> = map.keys().filter(|k| !known.contains(&k.as_str())).cloned().collect();
        unknown_fields.sort();
        Ok(Step {
            kind,
            timeout: text("timeout")?,
            attempts,
            tags,
            across,
            across_fail_fast: map.get("fail_fast").and_then(Value::as_bool).unwrap_or(false),
            on_success: hook("on_success")?,
            on_failure: hook("on_failure")?,
            on_abort: hook("on_abort")?,
            on_error: hook("on_error")?,
            ensure: hook("ensure")?,
            unknown_fields,
        })
    }

    /// The step's name as validation and the UI show it (`get(repo)`).
    pub fn describe(&self) -> String {
        match &self.kind {
            StepKind::Get(get) => format!("get({})", get.name),
            StepKind::Put(put) => format!("put({})", put.name),
            StepKind::Task(task) => format!("task({})", task.name),
            StepKind::SetPipeline(set) => format!("set_pipeline({})", set.name),
            StepKind::LoadVar(load) => format!("load_var({})", load.name),
            StepKind::Try(_) => "try".into(),
            StepKind::Do(_) => "do".into(),
            StepKind::InParallel(_) => "in_parallel".into(),
            StepKind::Run(run) => format!("run({}.{})", run.type_, run.message),
        }
    }

    /// Calls `visit` on this step and every step inside it (hooks too),
    /// outer steps first.
    pub fn walk<'a>(&'a self, visit: &mut dyn FnMut(&'a Step)) {
        visit(self);
        match &self.kind {
            StepKind::Try(inner) => inner.walk(visit),
            StepKind::Do(steps) => steps.iter().for_each(|s| s.walk(visit)),
            StepKind::InParallel(parallel) => parallel.steps.iter().for_each(|s| s.walk(visit)),
            _ => {}
        }
        for hook in
            [&self.on_success, &self.on_failure, &self.on_abort, &self.on_error, &self.ensure].into_iter().flatten()
        {
            hook.walk(visit);
        }
    }
}

fn in_parallel(value: &Value) -> Result<InParallelStep, InvalidStep> {
    match value {
        Value::Array(_) => {
            Ok(InParallelStep { steps: step_list(value, "in_parallel")?, limit: None, fail_fast: false })
        }
        Value::Object(config) => {
            let unknown: Vec<String> = config
                .keys()
                .filter(|k| !["steps", "limit", "fail_fast"].contains(&k.as_str()))
                .map(|k| format!("\"{k}\""))
                .collect();
            if !unknown.is_empty() {
                return Err(InvalidStep::UnknownParallelFields(unknown));
            }
            let steps = match config.get("steps") {
                Some(steps) => step_list(steps, "in_parallel.steps")?,
                None => Vec::new(),
            };
            let limit = match config.get("limit") {
                None | Some(Value::Null) => None,
                Some(limit) => Some(limit.as_i64().ok_or_else(|| InvalidStep::WrongType {
                    key: "in_parallel.limit",
                    expected: "a number",
                    value: limit.clone(),
                })?),
            };
            let fail_fast = match config.get("fail_fast") {
                None | Some(Value::Null) => false,
                Some(flag) => flag.as_bool().ok_or_else(|| InvalidStep::WrongType {
                    key: "in_parallel.fail_fast",
                    expected: "true or false",
                    value: flag.clone(),
                })?,
            };
            Ok(InParallelStep { steps, limit, fail_fast })
        }
        other => Err(InvalidStep::WrongType {
            key: "in_parallel",
            expected: "a list of steps or a map",
            value: other.clone(),
        }),
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Step, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Step::from_value(&value).map_err(D::Error::custom)
    }
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields = match &self.kind {
            StepKind::Get(get) => to_map(get),
            StepKind::Put(put) => to_map(put),
            StepKind::Task(task) => to_map(task.as_ref()),
            StepKind::SetPipeline(set) => to_map(set),
            StepKind::LoadVar(load) => to_map(load),
            StepKind::Run(run) => to_map(run),
            StepKind::Try(inner) => single("try", serde_json::to_value(inner).unwrap_or(Value::Null)),
            StepKind::Do(steps) => single("do", serde_json::to_value(steps).unwrap_or(Value::Null)),
            StepKind::InParallel(parallel) => {
                let mut config = Map::new();
                config.insert("steps".into(), serde_json::to_value(&parallel.steps).unwrap_or(Value::Null));
                if let Some(limit) = parallel.limit {
                    config.insert("limit".into(), limit.into());
                }
                if parallel.fail_fast {
                    config.insert("fail_fast".into(), true.into());
                }
                single("in_parallel", Value::Object(config))
            }
        };
        if let Some(timeout) = &self.timeout {
            fields.insert("timeout".into(), timeout.clone().into());
        }
        if let Some(attempts) = self.attempts {
            fields.insert("attempts".into(), attempts.into());
        }
        if !self.tags.is_empty() {
            fields.insert("tags".into(), self.tags.clone().into());
        }
        if let Some(across) = &self.across {
            fields.insert("across".into(), serde_json::to_value(across).unwrap_or(Value::Null));
            if self.across_fail_fast {
                fields.insert("fail_fast".into(), true.into());
            }
        }
        let hooks = [
            ("on_success", &self.on_success),
            ("on_failure", &self.on_failure),
            ("on_abort", &self.on_abort),
            ("on_error", &self.on_error),
            ("ensure", &self.ensure),
        ];
        for (key, hook) in hooks {
            if let Some(hook) = hook {
                fields.insert(key.into(), serde_json::to_value(hook).unwrap_or(Value::Null));
            }
        }
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for (key, value) in &fields {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

fn to_map<T: Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn single(key: &str, value: Value) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(key.into(), value);
    map
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_core_step_decides_and_modifiers_attach() {
        let step = Step::from_value(&json!({
            "task": "unit", "file": "ci/unit.yml", "timeout": "5m", "attempts": 2,
            "on_failure": { "put": "alert" }, "tags": ["linux"]
        }))
        .unwrap();
        let StepKind::Task(task) = &step.kind else { panic!("{step:?}") };
        assert_eq!(task.config_path, "ci/unit.yml");
        assert_eq!((step.timeout.as_deref(), step.attempts), (Some("5m"), Some(2)));
        assert!(matches!(step.on_failure.as_deref().map(|h| &h.kind), Some(StepKind::Put(_))));
        assert!(step.unknown_fields.is_empty());
    }

    #[test]
    fn two_core_steps_leave_the_lesser_as_unknown() {
        let step = Step::from_value(&json!({ "get": "a", "put": "b" })).unwrap();
        assert!(matches!(step.kind, StepKind::Put(_)));
        assert_eq!(step.unknown_fields, vec!["get".to_string()]);
        assert_eq!(
            Step::from_value(&json!({ "timeout": "1m" })).unwrap_err().to_string(),
            "no core step type declared (e.g. get, put, task, etc.)"
        );
        assert_eq!(Step::from_value(&json!({ "bogus": 1 })).unwrap_err().to_string(), "no step configured");
        let typo = Step::from_value(&json!({ "get": "a", "trigerr": true })).unwrap();
        assert_eq!(typo.unknown_fields, vec!["trigerr".to_string()]);
        // Listed as the other unknown fields are, not in Rust's debug notation.
        let typo = Step::from_value(&json!({ "in_parallel": { "steps": [], "limt": 1, "fail": true } })).unwrap_err();
        assert_eq!(typo.to_string(), r#"in_parallel: unknown fields ["fail" "limt"]"#);
    }

    #[test]
    fn steps_serialize_back_into_one_map() {
        let source = json!({
            "in_parallel": { "steps": [{ "get": "a", "trigger": true }, { "task": "t", "config": { "platform": "linux", "run": { "path": "true" } } }], "limit": 2 },
            "across": [{ "var": "v", "values": [1, 2] }], "fail_fast": true, "ensure": { "load_var": "x", "file": "f" }
        });
        let step = Step::from_value(&source).unwrap();
        let round = serde_json::to_value(&step).unwrap();
        assert_eq!(round, source);
        let list_form = Step::from_value(&json!({ "in_parallel": [{ "get": "a" }] })).unwrap();
        assert_eq!(serde_json::to_value(&list_form).unwrap(), json!({ "in_parallel": { "steps": [{ "get": "a" }] } }));
    }

    #[test]
    fn malformed_fields_name_where() {
        let err = Step::from_value(&json!({ "get": "a", "passed": "not-a-list" })).unwrap_err().to_string();
        assert!(err.starts_with("get: passed:"), "{err}");
        let err = Step::from_value(&json!({ "do": [{ "task": "t", "config": { "platform": "linux", "rn": {} } }] }))
            .unwrap_err()
            .to_string();
        assert!(err.contains("do[0]") && err.contains("rn"), "{err}");
    }
}
