//! Build plans in Concourse's `exec.v2` JSON: what a build runs, as a tree
//! of steps each with a plan id. A job's configuration compiles to a plan;
//! `fly execute` sends one directly. Sources, params and task configs stay
//! JSON here because `((vars))` in them are interpolated only when the step
//! runs.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_null(value: &Value) -> bool {
    value.is_null()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub id: String,
    /// Which attempt of a `retry` this is, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<u32>,
    #[serde(flatten)]
    pub step: Step,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Get(GetPlan),
    Put(PutPlan),
    Check(CheckPlan),
    Task(TaskPlan),
    SetPipeline(SetPipelinePlan),
    LoadVar(LoadVarPlan),
    Do(Vec<Plan>),
    InParallel(InParallelPlan),
    Across(AcrossPlan),
    OnSuccess(HookPlan<OnSuccessNext>),
    OnFailure(HookPlan<OnFailureNext>),
    OnAbort(HookPlan<OnAbortNext>),
    OnError(HookPlan<OnErrorNext>),
    Ensure(HookPlan<EnsureNext>),
    Try(TryPlan),
    Timeout(TimeoutPlan),
    Retry(Vec<Plan>),
    ArtifactInput(ArtifactInputPlan),
    ArtifactOutput(ArtifactOutputPlan),
}

/// How a resource type's image is obtained: a base type, or a check + get
/// of a custom type's own resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TypeImage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_plan: Option<Box<Plan>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get_plan: Option<Box<Plan>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base_type: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub privileged: bool,
    /// The pipeline's custom types from the one named down to the base
    /// type, nearest first: a runtime that runs images takes its image
    /// from them. Sources are interpolated when the step runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_types: Vec<CustomTypePlan>,
}

/// One of a pipeline's `resource_types`, as a step's image needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CustomTypePlan {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub source: Value,
    #[serde(default, skip_serializing_if = "is_false")]
    pub privileged: bool,
}

impl TypeImage {
    /// The steps that fetch the image, if it is a custom type's.
    pub fn plans(&self) -> impl Iterator<Item = &Plan> {
        [&self.check_plan, &self.get_plan].into_iter().flatten().map(Box::as_ref)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct GetPlan {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub source: Value,
    #[serde(default)]
    pub image: TypeImage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Value>,
    /// Take the version produced by this (put or check) step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_from: Option<String>,
    #[serde(default, skip_serializing_if = "is_null")]
    pub params: Value,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timeout: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PutPlan {
    pub name: String,
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub source: Value,
    #[serde(default)]
    pub image: TypeImage,
    #[serde(default, skip_serializing_if = "is_null")]
    pub params: Value,
    /// `"all"`, `"detect"` or a list of artifact names; absent means detect.
    #[serde(default, skip_serializing_if = "is_null")]
    pub inputs: Value,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timeout: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub expose_build_created_by: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CheckPlan {
    pub name: String,
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub source: Value,
    #[serde(default)]
    pub image: TypeImage,
    #[serde(default, skip_serializing_if = "is_null")]
    pub from_version: Value,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interval: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_interval: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timeout: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TaskPlan {
    pub name: String,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub hermetic: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config_path: String,
    /// The task config (inputs, outputs, run, ...) before interpolation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    #[serde(default, skip_serializing_if = "is_null")]
    pub container_limits: Value,
    /// Name of an artifact to use as the task's image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "is_null")]
    pub vars: Value,
    #[serde(default, skip_serializing_if = "is_null")]
    pub params: Value,
    #[serde(default, skip_serializing_if = "is_null")]
    pub input_mapping: Value,
    #[serde(default, skip_serializing_if = "is_null")]
    pub output_mapping: Value,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timeout: String,
    #[serde(default, skip_serializing_if = "is_null")]
    pub resource_types: Value,
    #[serde(default, skip_serializing_if = "is_false")]
    pub check_skip_interval: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SetPipelinePlan {
    pub name: String,
    pub file: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub team: String,
    #[serde(default, skip_serializing_if = "is_null")]
    pub vars: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub var_files: Vec<String>,
    #[serde(default, skip_serializing_if = "is_null")]
    pub instance_vars: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LoadVarPlan {
    pub name: String,
    pub file: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub format: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub reveal: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InParallelPlan {
    pub steps: Vec<Plan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub fail_fast: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AcrossVar {
    pub name: String,
    #[serde(default)]
    pub values: Value,
    /// A number, or `"all"`; absent means one at a time.
    #[serde(default, skip_serializing_if = "is_null")]
    pub max_in_flight: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AcrossPlan {
    pub vars: Vec<AcrossVar>,
    /// The plan of one combination of values, as JSON with `((.:var))`
    /// references still in it; each substep interpolates its own copy.
    pub substep_template: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub fail_fast: bool,
}

/// A step followed by a hook; `N` names the hook's JSON key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookPlan<N> {
    pub step: Box<Plan>,
    #[serde(flatten)]
    pub next: N,
}

macro_rules! hook_key {
    ($name:ident, $key:literal) => {
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            #[serde(rename = $key)]
            pub plan: Box<Plan>,
        }
    };
}
hook_key!(OnSuccessNext, "on_success");
hook_key!(OnFailureNext, "on_failure");
hook_key!(OnAbortNext, "on_abort");
hook_key!(OnErrorNext, "on_error");
hook_key!(EnsureNext, "ensure");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TryPlan {
    pub step: Box<Plan>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeoutPlan {
    pub step: Box<Plan>,
    pub duration: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ArtifactInputPlan {
    pub artifact_id: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ArtifactOutputPlan {
    pub name: String,
}

/// How deeply steps may nest inside other steps when a build runs them
/// (`do`, `try`, `in_parallel`, hooks, `timeout`, `attempts`, and each var
/// of an `across`). Running a step recurses into the steps inside it on a
/// worker thread's small stack; real plans nest a dozen levels at most.
pub const MAX_STEP_DEPTH: usize = 64;

/// The most steps a plan may have, once `attempts` made its copies: each
/// attempt of an attempt is another copy, so a few lines of configuration
/// could otherwise ask for millions.
pub const MAX_PLAN_STEPS: usize = 50_000;

impl Plan {
    /// Calls `visit` on this plan and every plan inside it, parents before
    /// children (an `across` template is not inside: it is not a plan yet).
    pub fn for_each_plan_mut(&mut self, visit: &mut impl FnMut(&mut Plan)) {
        visit(self);
        fn image_plans(image: &mut TypeImage) -> Vec<&mut Plan> {
            [image.check_plan.as_deref_mut(), image.get_plan.as_deref_mut()].into_iter().flatten().collect()
        }
        let children: Vec<&mut Plan> = match &mut self.step {
            Step::Get(get) => image_plans(&mut get.image),
            Step::Put(put) => image_plans(&mut put.image),
            Step::Check(check) => image_plans(&mut check.image),
            Step::Task(_) | Step::SetPipeline(_) | Step::LoadVar(_) | Step::Across(_) => Vec::new(),
            Step::ArtifactInput(_) | Step::ArtifactOutput(_) => Vec::new(),
            Step::Do(steps) | Step::Retry(steps) => steps.iter_mut().collect(),
            Step::InParallel(parallel) => parallel.steps.iter_mut().collect(),
            Step::OnSuccess(hook) => vec![&mut *hook.step, &mut *hook.next.plan],
            Step::OnFailure(hook) => vec![&mut *hook.step, &mut *hook.next.plan],
            Step::OnAbort(hook) => vec![&mut *hook.step, &mut *hook.next.plan],
            Step::OnError(hook) => vec![&mut *hook.step, &mut *hook.next.plan],
            Step::Ensure(hook) => vec![&mut *hook.step, &mut *hook.next.plan],
            Step::Try(inner) => vec![&mut *inner.step],
            Step::Timeout(inner) => vec![&mut *inner.step],
        };
        for child in children {
            child.for_each_plan_mut(visit);
        }
    }

    /// Gives every plan in this substep of an `across` an id of its own,
    /// `ACROSS/INDEX/N` in visiting order, as Concourse numbers them: the
    /// template's ids repeat in every substep. `version_from` follows its
    /// plan to its new id.
    pub fn renumber_as_substep(&mut self, across_id: &str, index: usize) {
        let mut renamed = std::collections::HashMap::new();
        let mut counter = 0usize;
        self.for_each_plan_mut(&mut |plan| {
            let id = format!("{across_id}/{index}/{counter}");
            renamed.insert(std::mem::replace(&mut plan.id, id.clone()), id);
            counter += 1;
        });
        self.for_each_plan_mut(&mut |plan| {
            if let Step::Get(get) = &mut plan.step
                && let Some(from) = &mut get.version_from
                && let Some(id) = renamed.get(from.as_str())
            {
                *from = id.clone();
            }
        });
    }

    /// How deeply the plan's steps nest when run (see [`MAX_STEP_DEPTH`]),
    /// an `across` counting one level per var above its substep. Counting
    /// stops just past the limit, so a plan of any depth is measured safely.
    pub fn step_depth(&self) -> usize {
        self.depth_from(1)
    }

    fn depth_from(&self, level: usize) -> usize {
        if level > MAX_STEP_DEPTH {
            return level;
        }
        let inner = level + 1;
        let nested: Vec<&Plan> = match &self.step {
            Step::Do(plans) | Step::Retry(plans) => plans.iter().collect(),
            Step::InParallel(parallel) => parallel.steps.iter().collect(),
            Step::OnSuccess(h) => vec![&*h.step, &*h.next.plan],
            Step::OnFailure(h) => vec![&*h.step, &*h.next.plan],
            Step::OnAbort(h) => vec![&*h.step, &*h.next.plan],
            Step::OnError(h) => vec![&*h.step, &*h.next.plan],
            Step::Ensure(h) => vec![&*h.step, &*h.next.plan],
            Step::Try(TryPlan { step }) | Step::Timeout(TimeoutPlan { step, .. }) => vec![step.as_ref()],
            Step::Get(GetPlan { image, .. })
            | Step::Put(PutPlan { image, .. })
            | Step::Check(CheckPlan { image, .. }) => image.plans().collect(),
            Step::Across(across) => {
                // The substep runs one level below each var; a template
                // that is a plan only once interpolated counts as a step.
                let substep_level = inner + across.vars.len();
                return match serde_json::from_str::<Plan>(&across.substep_template) {
                    Ok(substep) => substep.depth_from(substep_level),
                    Err(_) => substep_level,
                };
            }
            Step::Task(_)
            | Step::SetPipeline(_)
            | Step::LoadVar(_)
            | Step::ArtifactInput(_)
            | Step::ArtifactOutput(_) => Vec::new(),
        };
        nested.iter().map(|plan| plan.depth_from(inner)).max().unwrap_or(level)
    }

    /// The plan without sources, params or configs: what anyone who may see
    /// the build may see (`GET /api/v1/builds/:id/plan`).
    pub fn public(&self) -> Value {
        let image_plans = |image: &TypeImage, into: &mut Value| {
            if let Some(get) = &image.get_plan {
                into["image_get_plan"] = get.public();
            }
            if let Some(check) = &image.check_plan {
                into["image_check_plan"] = check.public();
            }
        };
        let hook = |step: &Plan, key: &str, next: &Plan| json!({ "step": step.public(), key: next.public() });
        let (key, body) = match &self.step {
            Step::Get(get) => {
                let mut body = json!({ "name": get.name, "type": get.type_ });
                if !get.resource.is_empty() {
                    body["resource"] = json!(get.resource);
                }
                if let Some(version) = &get.version {
                    body["version"] = version.clone();
                }
                image_plans(&get.image, &mut body);
                ("get", body)
            }
            Step::Put(put) => {
                let mut body = json!({ "name": put.name, "type": put.type_ });
                if !put.resource.is_empty() {
                    body["resource"] = json!(put.resource);
                }
                image_plans(&put.image, &mut body);
                ("put", body)
            }
            Step::Check(check) => {
                let mut body = json!({ "name": check.name, "type": check.type_ });
                image_plans(&check.image, &mut body);
                ("check", body)
            }
            Step::Task(task) => {
                ("task", json!({ "name": task.name, "privileged": task.privileged, "hermetic": task.hermetic }))
            }
            Step::SetPipeline(set) => {
                let instance_vars = if set.instance_vars.is_null() { Value::Null } else { set.instance_vars.clone() };
                ("set_pipeline", json!({ "name": set.name, "team": set.team, "instance_vars": instance_vars }))
            }
            Step::LoadVar(load) => ("load_var", json!({ "name": load.name })),
            Step::Do(steps) => ("do", Value::Array(steps.iter().map(Plan::public).collect())),
            Step::Retry(steps) => ("retry", Value::Array(steps.iter().map(Plan::public).collect())),
            Step::InParallel(parallel) => {
                let mut body = json!({ "steps": parallel.steps.iter().map(Plan::public).collect::<Vec<_>>() });
                if let Some(limit) = parallel.limit {
                    body["limit"] = json!(limit);
                }
                if parallel.fail_fast {
                    body["fail_fast"] = json!(true);
                }
                ("in_parallel", body)
            }
            Step::Across(across) => {
                let vars: Vec<Value> = across.vars.iter().map(|v| json!({ "name": v.name })).collect();
                let mut body = json!({ "vars": vars });
                if across.fail_fast {
                    body["fail_fast"] = json!(true);
                }
                ("across", body)
            }
            Step::OnSuccess(h) => ("on_success", hook(&h.step, "on_success", &h.next.plan)),
            Step::OnFailure(h) => ("on_failure", hook(&h.step, "on_failure", &h.next.plan)),
            Step::OnAbort(h) => ("on_abort", hook(&h.step, "on_abort", &h.next.plan)),
            Step::OnError(h) => ("on_error", hook(&h.step, "on_error", &h.next.plan)),
            Step::Ensure(h) => ("ensure", hook(&h.step, "ensure", &h.next.plan)),
            Step::Try(t) => ("try", json!({ "step": t.step.public() })),
            Step::Timeout(t) => ("timeout", json!({ "step": t.step.public(), "duration": t.duration })),
            Step::ArtifactInput(a) => ("artifact_input", json!({ "artifact_id": a.artifact_id, "name": a.name })),
            Step::ArtifactOutput(a) => ("artifact_output", json!({ "name": a.name })),
        };
        json!({ "id": self.id, key: body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_concourse_plan_json() {
        let wire = json!({
            "id": "6",
            "on_success": {
                "step": { "id": "4", "put": { "name": "out", "type": "mock", "source": {}, "image": {"base_type": "mock"} } },
                "on_success": {
                    "id": "5",
                    "get": { "name": "out", "type": "mock", "source": {}, "image": {"base_type": "mock"}, "version_from": "4" }
                }
            }
        });
        let plan: Plan = serde_json::from_value(wire.clone()).unwrap();
        let Step::OnSuccess(hook) = &plan.step else { panic!("expected on_success, got {plan:?}") };
        assert!(matches!(hook.step.step, Step::Put(_)));
        let Step::Get(get) = &hook.next.plan.step else { panic!("expected get") };
        assert_eq!(get.version_from.as_deref(), Some("4"));
        assert_eq!(serde_json::to_value(&plan).unwrap(), wire);
    }

    #[test]
    fn step_depth_counts_nested_steps_across_vars_and_substeps() {
        let task = json!({ "id": "t", "task": { "name": "t" } });
        let plan = |value: Value| serde_json::from_value::<Plan>(value).unwrap();
        assert_eq!(plan(task.clone()).step_depth(), 1);
        let wrapped = json!({ "id": "1", "do": [{ "id": "2", "try": { "step": task } }] });
        assert_eq!(plan(wrapped.clone()).step_depth(), 3);
        let across = json!({ "id": "a", "across": {
            "vars": [{ "name": "x" }, { "name": "y" }],
            "substep_template": wrapped.to_string(),
        } });
        assert_eq!(plan(across).step_depth(), 1 + 2 + 3);
        // Measuring stops just past the limit, whatever the depth.
        let vars: Vec<Value> = (0..MAX_STEP_DEPTH).map(|i| json!({ "name": format!("v{i}") })).collect();
        let mut deep = task;
        for i in 0..10 {
            deep = json!({ "id": i.to_string(), "across": { "vars": vars, "substep_template": deep.to_string() } });
        }
        assert_eq!(plan(deep).step_depth(), 1 + MAX_STEP_DEPTH + 1);
    }

    #[test]
    fn public_plans_leave_out_sources_and_params() {
        let plan: Plan = serde_json::from_value(json!({
            "id": "1",
            "do": [
                { "id": "2", "get": { "name": "repo", "type": "git", "source": { "private_key": "secret" }, "resource": "repo" } },
                { "id": "3", "task": { "name": "unit", "privileged": false, "config": { "params": { "TOKEN": "secret" } } } }
            ]
        }))
        .unwrap();
        let public = plan.public();
        assert!(!public.to_string().contains("secret"));
        assert_eq!(public["do"][0]["get"], json!({ "name": "repo", "type": "git", "resource": "repo" }));
        assert_eq!(public["do"][1]["task"], json!({ "name": "unit", "privileged": false, "hermetic": false }));
    }
}
