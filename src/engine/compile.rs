//! Compiling a job's configuration into the plan a build runs.
//!
//! Works on the configuration's JSON, which is Concourse's own shape and is
//! what the database stores for every job: steps are maps whose keys say
//! what they are. Modifier keys wrap the core step in this order, outermost
//! first: `ensure`, `on_error`, `on_abort`, `on_failure`, `on_success`,
//! `across`, `attempts`, `timeout`, then the core step (`get`, `put`,
//! `task`, `set_pipeline`, `load_var`, `try`, `do`, `in_parallel`).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::plan::{
    AcrossPlan, AcrossVar, CustomTypePlan, EnsureNext, GetPlan, HookPlan, InParallelPlan, LoadVarPlan, MAX_PLAN_STEPS,
    MAX_STEP_DEPTH, OnAbortNext, OnErrorNext, OnFailureNext, OnSuccessNext, Plan, PutPlan, SetPipelinePlan, Step,
    TaskPlan, TimeoutPlan, TryPlan, TypeImage,
};
use crate::nesting::{self, MAX_JSON_DEPTH};

/// What a job's plan is compiled against: the pipeline's resources and
/// resource types (by name, as configured) and the versions chosen for the
/// job's gets.
pub struct JobContext<'a> {
    pub resources: &'a HashMap<String, Value>,
    pub resource_types: &'a HashMap<String, Value>,
    /// The version each get (by its name) fetches.
    pub versions: &'a HashMap<String, Value>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CompileError {
    #[error("step {0} is not a step this atc understands")]
    UnknownStep(String),
    #[error("unknown resource '{0}'")]
    UnknownResource(String),
    #[error("no version was chosen for get '{0}'")]
    VersionNotChosen(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} steps are not supported by atc")]
    Unsupported(&'static str),
    #[error("steps nest more than {MAX_STEP_DEPTH} deep once their hooks and modifiers wrap them")]
    TooDeep,
    #[error(
        "its build plan nests {0} levels deep as JSON, more than the {MAX_JSON_DEPTH} that can be stored: nest fewer steps, or params and sources less deeply"
    )]
    TooDeepToStore(usize),
    #[error("it has more than {MAX_PLAN_STEPS} steps once its attempts are made")]
    TooManySteps,
}

impl CompileError {
    /// Errors of the configuration's size rather than its content, which
    /// only compiling finds (validation finds the rest first).
    fn is_a_limit(&self) -> bool {
        matches!(self, CompileError::TooDeep | CompileError::TooDeepToStore(_) | CompileError::TooManySteps)
    }
}

/// The base type a resource type resolves to, through the pipeline's
/// custom types (`resource_types`, by name), which it keeps on the way.
pub fn type_image(resource_types: &HashMap<String, Value>, type_name: &str) -> TypeImage {
    let mut current = type_name.to_string();
    let mut privileged = false;
    let mut custom_types = Vec::new();
    // Bounded: validation rejects cycles, but never loop on bad data.
    for _ in 0..16 {
        match resource_types.get(&current) {
            Some(custom) if custom.get("type").and_then(Value::as_str) != Some(current.as_str()) => {
                let own_privileged = custom.get("privileged").and_then(Value::as_bool).unwrap_or(false);
                privileged |= own_privileged;
                let type_ = custom.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
                custom_types.push(CustomTypePlan {
                    name: current,
                    type_: type_.clone(),
                    source: custom.get("source").cloned().unwrap_or(Value::Null),
                    privileged: own_privileged,
                });
                current = type_;
            }
            _ => break,
        }
    }
    TypeImage { base_type: current, privileged, custom_types, ..TypeImage::default() }
}

/// Gives out plan ids, hex like Concourse's, unique within a build.
pub struct PlanIds {
    next: u64,
}

impl PlanIds {
    pub fn starting_at(seed: u64) -> PlanIds {
        PlanIds { next: seed }
    }

    pub fn take(&mut self) -> String {
        let id = format!("{:x}", self.next);
        self.next += 1;
        id
    }
}

/// Compiles a job (its JSON configuration) into a plan: its steps in order,
/// wrapped in the job's hooks.
/// Fails when the plan is too big to run or to store (see
/// [`MAX_STEP_DEPTH`], [`MAX_JSON_DEPTH`], [`MAX_PLAN_STEPS`]).
pub fn compile_job(job: &Value, ctx: &JobContext, ids: &mut PlanIds) -> Result<Plan, CompileError> {
    let steps = job.get("plan").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut compiler = Compiler { ctx, ids, tags: Vec::new(), steps_made: 0 };
    let body = compiler.sequence(&steps)?;
    let job_hooks = job.as_object().cloned().unwrap_or_default();
    let plan = compiler.wrap_hooks(body, &job_hooks)?;
    check_size(&plan)?;
    Ok(plan)
}

/// A plan a build can run and the database can give back: measured by
/// steps first, which also bounds how deep serializing it goes.
fn check_size(plan: &Plan) -> Result<(), CompileError> {
    if plan.step_depth() > MAX_STEP_DEPTH {
        return Err(CompileError::TooDeep);
    }
    let json = serde_json::to_value(plan).map_err(|e| CompileError::Invalid(e.to_string()))?;
    match nesting::depth(&json) {
        depth if depth > MAX_JSON_DEPTH => Err(CompileError::TooDeepToStore(depth)),
        _ => Ok(()),
    }
}

/// What compiling each job of a configuration (its JSON) says about its
/// size, as validation errors: the configuration is checked before it is
/// saved, not when its first build starts. Gets fetch stand-in versions.
pub fn size_errors(config: &Value) -> Vec<String> {
    let named = |key: &str| -> HashMap<String, Value> {
        let items = config.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        items
            .iter()
            .map(|item| (item.get("name").and_then(Value::as_str).unwrap_or_default().into(), item.clone()))
            .collect()
    };
    let (resources, resource_types) = (named("resources"), named("resource_types"));
    let jobs = config.get("jobs").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut errors = Vec::new();
    for job in jobs {
        let versions = get_names(job).into_iter().map(|name| (name, json!({ "version": "stand-in" }))).collect();
        let ctx = JobContext { resources: &resources, resource_types: &resource_types, versions: &versions };
        if let Err(err) = compile_job(job, &ctx, &mut PlanIds::starting_at(1))
            && err.is_a_limit()
        {
            let name = job.get("name").and_then(Value::as_str).unwrap_or_default();
            errors.push(format!("jobs.{name}: {err}"));
        }
    }
    errors
}

/// The names of every `get` in a job's steps (and anything else keyed
/// `get`: a stand-in version too many does no harm).
fn get_names(job: &Value) -> Vec<String> {
    let mut names = Vec::new();
    let mut pending = vec![job];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(name)) = map.get("get") {
                    names.push(name.clone());
                }
                pending.extend(map.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    names
}

struct Compiler<'a, 'b> {
    ctx: &'a JobContext<'a>,
    ids: &'b mut PlanIds,
    /// Tags of an enclosing `do`/`in_parallel`, for steps without their own.
    tags: Vec<String>,
    /// Plans made so far: `attempts` copies steps, so this can grow fast.
    steps_made: usize,
}

fn text(map: &Map<String, Value>, key: &str) -> String {
    map.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn strings(map: &Map<String, Value>, key: &str) -> Vec<String> {
    map.get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn field(map: &Map<String, Value>, key: &str) -> Value {
    map.get(key).cloned().unwrap_or(Value::Null)
}

impl Compiler<'_, '_> {
    fn plan(&mut self, step: Step) -> Plan {
        self.steps_made += 1;
        Plan { id: self.ids.take(), attempts: Vec::new(), step }
    }

    /// Stops compiling as soon as the plan has too many steps.
    fn check_steps(&self) -> Result<(), CompileError> {
        if self.steps_made > MAX_PLAN_STEPS { Err(CompileError::TooManySteps) } else { Ok(()) }
    }

    fn sequence(&mut self, steps: &[Value]) -> Result<Plan, CompileError> {
        let mut plans = Vec::with_capacity(steps.len());
        for step in steps {
            plans.push(self.step(step)?);
        }
        Ok(self.plan(Step::Do(plans)))
    }

    fn effective_tags(&self, map: &Map<String, Value>) -> Vec<String> {
        let own = strings(map, "tags");
        if own.is_empty() { self.tags.clone() } else { own }
    }

    /// One step map: its modifiers around its core step.
    fn step(&mut self, value: &Value) -> Result<Plan, CompileError> {
        self.check_steps()?;
        let map = value.as_object().ok_or_else(|| CompileError::UnknownStep(value.to_string()))?;
        let mut plan = self.core(map)?;
        if let Some(timeout) = map.get("timeout").and_then(Value::as_str) {
            plan = self.plan(Step::Timeout(TimeoutPlan { step: Box::new(plan), duration: timeout.to_string() }));
        }
        if let Some(attempts) = map.get("attempts") {
            let count = attempts
                .as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| CompileError::Invalid(format!("attempts must be a positive number, got {attempts}")))?;
            let mut tries = vec![plan];
            for _ in 1..count {
                self.check_steps()?;
                // Each attempt is its own plan, with its own ids.
                let mut again = self.core(map)?;
                if let Some(timeout) = map.get("timeout").and_then(Value::as_str) {
                    again =
                        self.plan(Step::Timeout(TimeoutPlan { step: Box::new(again), duration: timeout.to_string() }));
                }
                tries.push(again);
            }
            for (index, attempt) in tries.iter_mut().enumerate() {
                attempt.attempts = vec![index as u32 + 1];
            }
            plan = self.plan(Step::Retry(tries));
        }
        if let Some(vars) = map.get("across").and_then(Value::as_array) {
            let vars = vars
                .iter()
                .map(|var| AcrossVar {
                    name: var.get("var").and_then(Value::as_str).unwrap_or_default().to_string(),
                    values: var.get("values").cloned().unwrap_or(Value::Null),
                    max_in_flight: var.get("max_in_flight").cloned().unwrap_or(Value::Null),
                })
                .collect();
            // Measured before it is written out: writing recurses as deep.
            check_size(&plan)?;
            let template = serde_json::to_string(&plan).map_err(|e| CompileError::Invalid(e.to_string()))?;
            let fail_fast = map.get("fail_fast").and_then(Value::as_bool).unwrap_or(false);
            plan = self.plan(Step::Across(AcrossPlan { vars, substep_template: template, fail_fast }));
        }
        self.wrap_hooks(plan, map)
    }

    /// `on_success`, `on_failure`, `on_abort`, `on_error` and `ensure`,
    /// innermost first.
    fn wrap_hooks(&mut self, mut plan: Plan, map: &Map<String, Value>) -> Result<Plan, CompileError> {
        if let Some(hook) = map.get("on_success") {
            let next = Box::new(self.step(hook)?);
            plan = self.plan(Step::OnSuccess(HookPlan { step: Box::new(plan), next: OnSuccessNext { plan: next } }));
        }
        if let Some(hook) = map.get("on_failure") {
            let next = Box::new(self.step(hook)?);
            plan = self.plan(Step::OnFailure(HookPlan { step: Box::new(plan), next: OnFailureNext { plan: next } }));
        }
        if let Some(hook) = map.get("on_abort") {
            let next = Box::new(self.step(hook)?);
            plan = self.plan(Step::OnAbort(HookPlan { step: Box::new(plan), next: OnAbortNext { plan: next } }));
        }
        if let Some(hook) = map.get("on_error") {
            let next = Box::new(self.step(hook)?);
            plan = self.plan(Step::OnError(HookPlan { step: Box::new(plan), next: OnErrorNext { plan: next } }));
        }
        if let Some(hook) = map.get("ensure") {
            let next = Box::new(self.step(hook)?);
            plan = self.plan(Step::Ensure(HookPlan { step: Box::new(plan), next: EnsureNext { plan: next } }));
        }
        Ok(plan)
    }

    fn core(&mut self, map: &Map<String, Value>) -> Result<Plan, CompileError> {
        if map.contains_key("task") {
            return Ok(self.task(map));
        }
        if let Some(name) = map.get("put").and_then(Value::as_str) {
            return self.put(name, map);
        }
        if let Some(name) = map.get("get").and_then(Value::as_str) {
            return self.get(name, map);
        }
        if let Some(name) = map.get("set_pipeline").and_then(Value::as_str) {
            return Ok(self.plan(Step::SetPipeline(SetPipelinePlan {
                name: name.to_string(),
                file: text(map, "file"),
                team: text(map, "team"),
                vars: field(map, "vars"),
                var_files: strings(map, "var_files"),
                instance_vars: field(map, "instance_vars"),
            })));
        }
        if let Some(name) = map.get("load_var").and_then(Value::as_str) {
            return Ok(self.plan(Step::LoadVar(LoadVarPlan {
                name: name.to_string(),
                file: text(map, "file"),
                format: text(map, "format"),
                reveal: map.get("reveal").and_then(Value::as_bool).unwrap_or(false),
            })));
        }
        if let Some(inner) = map.get("try") {
            let step = Box::new(self.step(inner)?);
            return Ok(self.plan(Step::Try(TryPlan { step })));
        }
        if let Some(steps) = map.get("do").and_then(Value::as_array) {
            return self.with_tags(map, |compiler| compiler.sequence(steps));
        }
        if let Some(parallel) = map.get("in_parallel") {
            let (steps, limit, fail_fast) = match parallel {
                Value::Array(steps) => (steps.clone(), None, false),
                Value::Object(config) => (
                    config.get("steps").and_then(Value::as_array).cloned().unwrap_or_default(),
                    config.get("limit").and_then(Value::as_u64).filter(|l| *l > 0).map(|l| l as u32),
                    config.get("fail_fast").and_then(Value::as_bool).unwrap_or(false),
                ),
                other => {
                    return Err(CompileError::Invalid(format!("in_parallel must be a list or a map, got {other}")));
                }
            };
            return self.with_tags(map, |compiler| {
                let mut plans = Vec::with_capacity(steps.len());
                for step in &steps {
                    plans.push(compiler.step(step)?);
                }
                Ok(compiler.plan(Step::InParallel(InParallelPlan { steps: plans, limit, fail_fast })))
            });
        }
        if map.contains_key("run") {
            return Err(CompileError::Unsupported("run (prototype)"));
        }
        Err(CompileError::UnknownStep(Value::Object(map.clone()).to_string()))
    }

    fn with_tags<T>(
        &mut self,
        map: &Map<String, Value>,
        compile: impl FnOnce(&mut Self) -> Result<T, CompileError>,
    ) -> Result<T, CompileError> {
        let own = strings(map, "tags");
        if own.is_empty() {
            return compile(self);
        }
        let outer = std::mem::replace(&mut self.tags, own);
        let result = compile(self);
        self.tags = outer;
        result
    }

    fn resource(&self, name: &str) -> Result<&Value, CompileError> {
        self.ctx.resources.get(name).ok_or_else(|| CompileError::UnknownResource(name.to_string()))
    }

    fn type_image(&self, type_name: &str) -> TypeImage {
        type_image(self.ctx.resource_types, type_name)
    }

    /// A resource's source with its type's `defaults` underneath.
    fn source(&self, resource: &Value) -> Value {
        let mut source = resource.get("source").cloned().unwrap_or(Value::Object(Map::new()));
        let type_name = resource.get("type").and_then(Value::as_str).unwrap_or_default();
        if let (Some(Value::Object(defaults)), Value::Object(own)) =
            (self.ctx.resource_types.get(type_name).and_then(|t| t.get("defaults")), &mut source)
        {
            for (key, value) in defaults {
                own.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        source
    }

    fn get(&mut self, name: &str, map: &Map<String, Value>) -> Result<Plan, CompileError> {
        let resource_name = Some(text(map, "resource")).filter(|r| !r.is_empty()).unwrap_or_else(|| name.to_string());
        let resource = self.resource(&resource_name)?;
        let type_ = resource.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
        let version =
            self.ctx.versions.get(name).cloned().ok_or_else(|| CompileError::VersionNotChosen(name.to_string()))?;
        let get = GetPlan {
            name: name.to_string(),
            image: self.type_image(&type_),
            source: self.source(resource),
            type_,
            version: Some(version),
            version_from: None,
            params: field(map, "params"),
            resource: resource_name,
            tags: self.effective_tags(map),
            timeout: String::new(),
        };
        Ok(self.plan(Step::Get(get)))
    }

    /// A put, and the get of the version it produced (unless `no_get`).
    fn put(&mut self, name: &str, map: &Map<String, Value>) -> Result<Plan, CompileError> {
        let resource_name = Some(text(map, "resource")).filter(|r| !r.is_empty()).unwrap_or_else(|| name.to_string());
        let resource = self.resource(&resource_name)?;
        let type_ = resource.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
        let source = self.source(resource);
        let expose_build_created_by = resource.get("expose_build_created_by").and_then(Value::as_bool).unwrap_or(false);
        let tags = self.effective_tags(map);
        let put = self.plan(Step::Put(PutPlan {
            name: name.to_string(),
            image: self.type_image(&type_),
            type_: type_.clone(),
            source: source.clone(),
            params: field(map, "params"),
            inputs: field(map, "inputs"),
            resource: resource_name.clone(),
            tags: tags.clone(),
            timeout: String::new(),
            expose_build_created_by,
        }));
        if map.get("no_get").and_then(Value::as_bool).unwrap_or(false) {
            return Ok(put);
        }
        let get = self.plan(Step::Get(GetPlan {
            name: name.to_string(),
            image: self.type_image(&type_),
            type_,
            source,
            version: None,
            version_from: Some(put.id.clone()),
            params: field(map, "get_params"),
            resource: resource_name,
            tags,
            timeout: String::new(),
        }));
        Ok(self.plan(Step::OnSuccess(HookPlan { step: Box::new(put), next: OnSuccessNext { plan: Box::new(get) } })))
    }

    fn task(&mut self, map: &Map<String, Value>) -> Plan {
        let resource_types: Vec<Value> = self.ctx.resource_types.values().cloned().collect();
        let task = TaskPlan {
            name: text(map, "task"),
            privileged: map.get("privileged").and_then(Value::as_bool).unwrap_or(false),
            hermetic: map.get("hermetic").and_then(Value::as_bool).unwrap_or(false),
            tags: self.effective_tags(map),
            config_path: text(map, "file"),
            config: map.get("config").cloned(),
            container_limits: field(map, "container_limits"),
            image: text(map, "image"),
            vars: field(map, "vars"),
            params: field(map, "params"),
            input_mapping: field(map, "input_mapping"),
            output_mapping: field(map, "output_mapping"),
            timeout: String::new(),
            resource_types: if resource_types.is_empty() { Value::Null } else { Value::Array(resource_types) },
            check_skip_interval: false,
        };
        self.plan(Step::Task(task))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn compile(job: Value, versions: &[(&str, Value)]) -> Result<Plan, CompileError> {
        let resources: HashMap<String, Value> = [
            ("repo".to_string(), json!({ "name": "repo", "type": "git", "source": { "uri": "u" } })),
            ("image".to_string(), json!({ "name": "image", "type": "custom", "source": {} })),
        ]
        .into();
        let resource_types: HashMap<String, Value> =
            [("custom".to_string(), json!({ "name": "custom", "type": "mock", "defaults": { "d": 1 } }))].into();
        let versions: HashMap<String, Value> = versions.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let ctx = JobContext { resources: &resources, resource_types: &resource_types, versions: &versions };
        compile_job(&job, &ctx, &mut PlanIds::starting_at(1))
    }

    #[test]
    fn gets_carry_the_chosen_version_and_the_resource() {
        let plan = compile(
            json!({ "name": "j", "plan": [{ "get": "repo", "params": { "depth": 1 } }] }),
            &[("repo", json!({ "ref": "abc" }))],
        )
        .unwrap();
        let Step::Do(steps) = &plan.step else { panic!("{plan:?}") };
        let Step::Get(get) = &steps[0].step else { panic!() };
        assert_eq!(get.version, Some(json!({ "ref": "abc" })));
        assert_eq!((get.type_.as_str(), get.image.base_type.as_str()), ("git", "git"));
        assert_eq!(get.params, json!({ "depth": 1 }));
        assert_eq!(
            compile(json!({ "plan": [{ "get": "repo" }] }), &[]),
            Err(CompileError::VersionNotChosen("repo".into()))
        );
    }

    #[test]
    fn puts_get_what_they_produced_from_custom_types_with_defaults() {
        let plan = compile(json!({ "plan": [{ "put": "image", "get_params": { "skip": true } }] }), &[]).unwrap();
        let Step::Do(steps) = &plan.step else { panic!() };
        let Step::OnSuccess(hook) = &steps[0].step else { panic!("{:?}", steps[0]) };
        let Step::Put(put) = &hook.step.step else { panic!() };
        let Step::Get(get) = &hook.next.plan.step else { panic!() };
        assert_eq!(put.image.base_type, "mock");
        assert_eq!(put.source, json!({ "d": 1 }));
        let custom =
            CustomTypePlan { name: "custom".into(), type_: "mock".into(), source: Value::Null, privileged: false };
        assert_eq!(put.image.custom_types, [custom], "the custom type is kept, not only its base");
        assert_eq!(get.version_from.as_deref(), Some(hook.step.id.as_str()));
        assert_eq!(get.params, json!({ "skip": true }));
    }

    #[test]
    fn a_chain_of_custom_types_is_kept_nearest_first() {
        let types: HashMap<String, Value> = [
            (
                "outer".to_string(),
                json!({ "name": "outer", "type": "inner", "source": { "o": 1 }, "privileged": true }),
            ),
            ("inner".to_string(), json!({ "name": "inner", "type": "git", "source": { "i": 2 } })),
        ]
        .into();
        let image = type_image(&types, "outer");
        assert_eq!(image.base_type, "git");
        assert!(image.privileged, "a privileged type anywhere in the chain makes the image privileged");
        let names: Vec<(&str, &str)> = image.custom_types.iter().map(|t| (t.name.as_str(), t.type_.as_str())).collect();
        assert_eq!(names, [("outer", "inner"), ("inner", "git")]);
        assert_eq!(image.custom_types[1].source, json!({ "i": 2 }));
        assert!(type_image(&types, "git").custom_types.is_empty());
    }

    #[test]
    fn modifiers_wrap_in_concourse_order() {
        let plan = compile(
            json!({ "plan": [{
                "task": "t", "config": {}, "timeout": "1m", "attempts": 2,
                "on_failure": { "task": "f", "config": {} }, "ensure": { "task": "e", "config": {} }
            }], "on_success": { "task": "s", "config": {} } }),
            &[],
        )
        .unwrap();
        let Step::OnSuccess(job_hook) = &plan.step else { panic!("job hooks wrap the plan: {plan:?}") };
        let Step::Do(steps) = &job_hook.step.step else { panic!() };
        let Step::Ensure(ensure) = &steps[0].step else { panic!("ensure is outermost") };
        let Step::OnFailure(on_failure) = &ensure.step.step else { panic!() };
        let Step::Retry(attempts) = &on_failure.step.step else { panic!("attempts inside the hooks") };
        assert_eq!(attempts.len(), 2);
        assert_ne!(attempts[0].id, attempts[1].id, "each attempt has its own ids");
        assert_eq!(attempts[1].attempts, vec![2]);
        let Step::Timeout(timeout) = &attempts[0].step else { panic!("timeout inside each attempt") };
        assert_eq!(timeout.duration, "1m");
        assert!(matches!(timeout.step.step, Step::Task(_)));
    }

    #[test]
    fn across_keeps_its_substep_as_a_template() {
        let plan = compile(
            json!({ "plan": [{ "task": "t-((.:v))", "config": {}, "across": [{ "var": "v", "values": [1, 2], "max_in_flight": "all" }] }] }),
            &[],
        )
        .unwrap();
        let Step::Do(steps) = &plan.step else { panic!() };
        let Step::Across(across) = &steps[0].step else { panic!() };
        assert_eq!(across.vars[0].name, "v");
        assert_eq!(across.vars[0].max_in_flight, json!("all"));
        assert!(across.substep_template.contains("t-((.:v))"));
    }

    #[test]
    fn plans_too_big_to_run_or_store_are_refused() {
        let task = json!({ "task": "t", "config": {} });
        // Attempts of attempts multiply: refused once too many are made.
        let mut step = json!({ "task": "t", "config": {}, "attempts": 10 });
        for _ in 0..5 {
            step = json!({ "try": step, "attempts": 10 });
        }
        assert!(matches!(compile(json!({ "plan": [step] }), &[]), Err(CompileError::TooManySteps)));
        // Each hook and modifier is a level of nesting.
        let mut step = task.clone();
        for _ in 0..20 {
            step = json!({ "try": step, "timeout": "1m", "attempts": 1, "ensure": task, "on_failure": task });
        }
        assert!(matches!(compile(json!({ "plan": [step] }), &[]), Err(CompileError::TooDeep)));
        // Params nested deep inside deeply nested steps are too deep to store.
        let params = (0..60).fold(json!(1), |inner, _| json!([inner]));
        let mut step = json!({ "task": "t", "config": {}, "params": params });
        for _ in 0..40 {
            step = json!({ "try": step });
        }
        assert!(
            matches!(compile(json!({ "plan": [step] }), &[]), Err(CompileError::TooDeepToStore(depth)) if depth > 127)
        );
        assert_eq!(size_errors(&json!({ "jobs": [{ "name": "ok", "plan": [task] }] })), Vec::<String>::new());
    }

    #[test]
    fn parallel_steps_inherit_tags() {
        let plan = compile(
            json!({ "plan": [{ "in_parallel": { "steps": [{ "get": "repo" }], "limit": 2 }, "tags": ["gpu"] }] }),
            &[("repo", json!({ "ref": "x" }))],
        )
        .unwrap();
        let Step::Do(steps) = &plan.step else { panic!() };
        let Step::InParallel(parallel) = &steps[0].step else { panic!() };
        assert_eq!(parallel.limit, Some(2));
        let Step::Get(get) = &parallel.steps[0].step else { panic!() };
        assert_eq!(get.tags, vec!["gpu".to_string()]);
    }
}
