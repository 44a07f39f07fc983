//! The `task` step: runs a process with the build's artifacts as inputs and
//! captures its outputs as new artifacts.

use serde_json::{Map, Value};

use super::StepError;
use super::delegate::StepDelegate;
use super::{Outcome, StepContext};
use crate::config::{SidecarResources, TaskConfig, TaskSidecar};
use crate::engine::event::{BuildEvent, Origin, TaskConfigSummary, TaskInputSummary, TaskRunSummary};
use crate::engine::plan::TaskPlan;
use crate::engine::step_process::trace_context;
use crate::runtime::{
    CacheMount, ImageSpec, InputMount, Limits, OutputMount, ProcessSpec, RuntimeError, Sidecar, SidecarPort, Stdout,
    StepSpec,
};

pub async fn run(task: &TaskPlan, delegate: &StepDelegate, ctx: &StepContext) -> Outcome {
    match prepare_and_run(task, delegate, ctx).await {
        Ok(outcome) => outcome,
        Err(err) => delegate.errored(err.to_string()),
    }
}

fn object(value: &Value, what: &str) -> Result<Map<String, Value>, StepError> {
    match value {
        Value::Null => Ok(Map::new()),
        Value::Object(map) => Ok(map.clone()),
        other => Err(StepError::Invalid(format!("{what} must be a map, got {other}"))),
    }
}

fn mapping(value: &Value, what: &str) -> Result<Map<String, Value>, StepError> {
    let map = object(value, what)?;
    if let Some((key, _)) = map.iter().find(|(_, v)| !v.is_string()) {
        return Err(StepError::Invalid(format!("{what}: '{key}' must map to an artifact name")));
    }
    Ok(map)
}

async fn prepare_and_run(task: &TaskPlan, delegate: &StepDelegate, ctx: &StepContext) -> Result<Outcome, StepError> {
    let build = &ctx.build;
    let plan_id = delegate.plan_id();
    let origin = Origin::step(plan_id);
    let vars = object(&task.vars, "vars")?;
    let vars = match build.interpolate(&Value::Object(vars), &ctx.scope).await? {
        Value::Object(vars) => vars,
        _ => Map::new(),
    };
    let raw = match (&task.config, task.config_path.is_empty()) {
        (Some(config), true) => config.clone(),
        (None, false) => {
            let bytes = super::artifacts::read_file(ctx, &task.config_path).await?;
            crate::config::yaml_value(&bytes)
                .map_err(|e| StepError::Invalid(format!("task config {}: {e}", task.config_path)))?
        }
        (Some(_), false) => {
            return Err(StepError::Invalid("must specify one of `file:` or `config:`, not both".into()));
        }
        (None, true) => return Err(StepError::Invalid("must specify either `file:` or `config:`".into())),
    };
    let interpolated = build.interpolate_with(&raw, &ctx.scope, &vars).await?;
    let config = TaskConfig::from_value(interpolated)
        .map_err(|e| StepError::Invalid(format!("invalid task configuration: {e}")))?;
    let problems = config.problems();
    if !problems.is_empty() {
        return Err(StepError::Invalid(format!("invalid task configuration:\n{}", problems.join("\n"))));
    }
    if config.run.path.is_empty() {
        return Err(StepError::Invalid("invalid task configuration: run.path is missing".into()));
    }

    let summary = TaskConfigSummary {
        platform: config.platform.clone(),
        image: config.rootfs_uri.clone(),
        run: TaskRunSummary {
            path: config.run.path.clone(),
            args: config.run.args.clone(),
            dir: config.run.dir.clone(),
        },
        inputs: config
            .inputs
            .iter()
            .map(|i| TaskInputSummary {
                name: i.name.clone(),
                path: if i.path.is_empty() { i.name.clone() } else { i.path.clone() },
            })
            .collect(),
    };
    delegate.initializing(BuildEvent::InitializeTask {
        origin: origin.clone(),
        config: summary.clone(),
        time: crate::db::now(),
    });

    let input_mapping = mapping(&task.input_mapping, "input_mapping")?;
    let output_mapping = mapping(&task.output_mapping, "output_mapping")?;
    let mut inputs = Vec::new();
    let mut missing = Vec::new();
    for input in &config.inputs {
        let artifact_name = input_mapping.get(&input.name).and_then(Value::as_str).unwrap_or(&input.name);
        let path = if input.path.is_empty() { input.name.clone() } else { input.path.clone() };
        match ctx.scope.artifact(artifact_name) {
            Some(artifact) => inputs.push(InputMount { artifact, path }),
            None if input.optional => {}
            None => missing.push(artifact_name.to_string()),
        }
    }
    if !missing.is_empty() {
        return Err(StepError::Invalid(format!("missing inputs: {}", missing.join(", "))));
    }
    let outputs: Vec<OutputMount> = config
        .outputs
        .iter()
        .map(|output| OutputMount {
            name: output.name.clone(),
            path: if output.path.is_empty() { output.name.clone() } else { output.path.clone() },
        })
        .collect();
    let mut caches = Vec::with_capacity(config.caches.len());
    for cache in &config.caches {
        let key = match build.info.job_id {
            // A job's caches are recorded, so `fly clear-task-cache` can clear them.
            Some(job_id) => {
                let id = build.db.task_cache_id(job_id, &task.name, &cache.path).await.map_err(|err| {
                    StepError::Invalid(format!("cannot record the task cache '{}': {err}", cache.path))
                })?;
                crate::db::task_cache_key(id)
            }
            None => format!("{}/build-{}/{}/{}", build.info.team_name, build.info.id, task.name, cache.path),
        };
        caches.push(CacheMount { key, path: cache.path.clone() });
    }

    let mut env = TaskConfig::environment(config.params.as_ref().unwrap_or(&Map::new()));
    let step_params = object(&build.interpolate(&task.params, &ctx.scope).await?, "params")?;
    for (key, value) in TaskConfig::environment(&step_params) {
        env.retain(|(existing, _)| existing != &key);
        env.push((key, value));
    }
    let image = if !task.image.is_empty() {
        let artifact = ctx
            .scope
            .artifact(&task.image)
            .ok_or_else(|| StepError::Invalid(format!("image artifact '{}' does not exist", task.image)))?;
        Some(ImageSpec::Artifact(artifact))
    } else if let Some(image) = &config.image_resource {
        Some(ImageSpec::Resource {
            type_: image.type_.clone(),
            source: image.source.clone(),
            params: image.params.clone().map(Value::Object).unwrap_or(Value::Null),
            version: image.version.clone().map(Value::Object),
        })
    } else if !config.rootfs_uri.is_empty() {
        Some(ImageSpec::RootfsUri(config.rootfs_uri.clone()))
    } else {
        None
    };
    let limits = config.container_limits.as_ref().map(limits).unwrap_or_default();
    let spec = StepSpec {
        handle: build.handle("task", plan_id),
        metadata: build.step_metadata("task", &task.name),
        image,
        privileged: task.privileged,
        limits,
        tags: task.tags.clone(),
        inputs,
        outputs,
        caches,
        process: ProcessSpec {
            path: config.run.path.clone(),
            args: config.run.args.clone(),
            dir: config.run.dir.clone(),
            user: Some(config.run.user.clone()).filter(|u| !u.is_empty()),
            env,
            stdin: None,
            stdout: Stdout::Stream,
        },
        sidecars: config.sidecars.iter().map(sidecar).collect(),
        // The step's span, for tools in the task to continue the trace.
        trace: trace_context(&ctx.trace),
    };

    let start = BuildEvent::StartTask { origin: origin.clone(), config: summary, time: crate::db::now() };
    let ran = delegate.process(ctx, Some(start)).run(spec).await;
    match ran {
        Ok(outcome) => {
            for (name, artifact) in outcome.outputs {
                let registered = output_mapping.get(&name).and_then(Value::as_str).unwrap_or(&name).to_string();
                build.register_artifact(plan_id, &ctx.scope, &registered, artifact);
            }
            delegate.finished(
                BuildEvent::FinishTask { origin, exit_status: outcome.exit_code, time: crate::db::now() },
                Some(outcome.exit_code),
            );
            Ok(if outcome.exit_code == 0 { Outcome::Succeeded } else { Outcome::Failed })
        }
        Err(RuntimeError::Interrupted) => Ok(Outcome::Interrupted),
        Err(err) => Err(StepError::Invalid(err.to_string())),
    }
}

/// A checked `sidecars:` entry as the runtime takes it.
fn sidecar(config: &TaskSidecar) -> Sidecar {
    let quantities = |side: Option<&std::collections::BTreeMap<String, Value>>| {
        let entries = side.into_iter().flatten();
        entries.filter_map(|(name, value)| Some((name.clone(), SidecarResources::quantity(value)?))).collect()
    };
    let resources = config.resources.as_ref();
    Sidecar {
        name: config.name.clone(),
        image: config.image.clone(),
        command: config.command.clone(),
        args: config.args.clone(),
        env: config.env.iter().map(|env| (env.name.clone(), env.value.clone())).collect(),
        ports: config
            .ports
            .iter()
            .map(|port| SidecarPort {
                port: port.container_port,
                name: Some(port.name.clone()).filter(|name| !name.is_empty()),
                protocol: port.protocol().to_string(),
            })
            .collect(),
        limits: quantities(resources.map(|r| &r.limits)),
        requests: quantities(resources.map(|r| &r.requests)),
        working_dir: config.working_dir.clone(),
    }
}

/// `cpu` in shares, `memory` in bytes or with a unit (`1GB`, `512MB`).
fn limits(config: &crate::config::ContainerLimits) -> Limits {
    let number = |value: &Option<Value>| -> Option<u64> {
        match value {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => parse_size(s),
            _ => None,
        }
    };
    Limits { cpu: number(&config.cpu), memory: number(&config.memory) }
}

fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_uppercase();
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    let number: u64 = digits.parse().ok()?;
    let unit = text[digits.len()..].trim().trim_end_matches('B');
    let factor = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_sidecar_reaches_the_runtime_with_kubernetes_defaults() {
        let config = TaskConfig::from_value(json!({
            "platform": "linux",
            "run": {"path": "x"},
            "sidecars": [{"name": "db", "image": "pg", "env": [{"name": "A", "value": "b"}],
                "ports": [{"containerPort": 5432}], "resources": {"limits": {"cpu": 1, "memory": "64Mi"}}}],
        }))
        .unwrap();
        let sidecar = sidecar(&config.sidecars[0]);
        assert_eq!(sidecar.env, [("A".to_string(), "b".to_string())]);
        assert_eq!(sidecar.ports, [SidecarPort { port: 5432, name: None, protocol: "TCP".into() }]);
        assert_eq!(sidecar.limits.get("cpu").map(String::as_str), Some("1"));
        assert_eq!(sidecar.limits.get("memory").map(String::as_str), Some("64Mi"));
        assert!(sidecar.requests.is_empty());
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_size("1GB"), Some(1 << 30));
        assert_eq!(parse_size("512mb"), Some(512 << 20));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("lots"), None);
    }
}
