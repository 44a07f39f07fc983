//! The `set_pipeline` step: a build configures a pipeline (its own with
//! `self`, another of its team, or, from the main team, of any team).

use serde_json::{Map, Value};

use super::{Outcome, StepContext};
use crate::auth::roles::MAIN_TEAM;
use crate::config::{self, vars};
use crate::db::{Channel, PipelineRef};
use crate::engine::event::{BuildEvent, Origin};
use crate::engine::plan::SetPipelinePlan;
use crate::engine::state::Scope;
use crate::engine::step_log::StepLog;

pub async fn run(plan_id: &str, plan: &SetPipelinePlan, ctx: &StepContext) -> Outcome {
    let log = StepLog::new(ctx.build.clone(), plan_id);
    match set(plan, ctx, &log).await {
        Ok(changed) => {
            ctx.build.emit_closing(plan_id, BuildEvent::SetPipelineChanged { origin: Origin::step(plan_id), changed });
            Outcome::Succeeded
        }
        Err(message) => {
            ctx.build.step_error(plan_id, &message);
            Outcome::Errored(message)
        }
    }
}

/// The static vars of the pipeline being set: `var_files`, then `vars`, then
/// `instance_vars`, a later one winning over an earlier one of the same name.
async fn static_vars(plan: &SetPipelinePlan, ctx: &StepContext) -> Result<Map<String, Value>, String> {
    let mut vars = Map::new();
    for file in &plan.var_files {
        let bytes = super::artifacts::read_file(ctx, file).await?;
        match config::yaml_value(&bytes).map_err(|e| format!("var file {file}: {e}"))? {
            Value::Object(map) => vars.extend(map),
            Value::Null => {}
            _ => return Err(format!("var file {file} must be a map of names to values")),
        }
    }
    if let Value::Object(given) = ctx.build.interpolate(&plan.vars, &ctx.scope).await? {
        vars.extend(given);
    }
    // Instance vars name the pipeline and fill its ((vars)) too, first of all.
    if let Value::Object(instance) = ctx.build.interpolate(&plan.instance_vars, &ctx.scope).await? {
        vars.extend(instance);
    }
    Ok(vars)
}

/// Returns whether the configuration changed.
async fn set(plan: &SetPipelinePlan, ctx: &StepContext, log: &StepLog) -> Result<bool, String> {
    // Checked here too: a name built from across vars is known only now.
    if let Some(problem) = config::unusable_name(&plan.name) {
        return Err(format!("pipeline name {problem}"));
    }
    let build = &ctx.build;
    let db = &build.db;
    let bytes = super::artifacts::read_file(ctx, &plan.file).await?;
    let document = config::yaml_value(&bytes).map_err(|e| format!("{}: {e}", plan.file))?;
    let vars = static_vars(plan, ctx).await?;
    let (pipeline, validation) = configure(&plan.file, document, &vars, &ctx.scope)?;
    for warning in &validation.warnings {
        log.notice(&format!("WARNING: {}", warning.message));
    }
    if !validation.errors.is_empty() {
        return Err(format!("invalid pipeline configuration in {}:\n{}", plan.file, validation.errors.join("\n")));
    }

    let team_name = if plan.team.is_empty() { build.info.team_name.clone() } else { plan.team.clone() };
    if team_name != build.info.team_name && build.info.team_name != MAIN_TEAM {
        // Concourse's words: scripts around `fly` look for them.
        return Err(format!(
            "only main team can set another team's pipeline (this build is of team '{}', the pipeline of team '{team_name}')",
            build.info.team_name
        ));
    }
    let team = db
        .find_team(&team_name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("team '{team_name}' does not exist"))?;
    let reference = if plan.name == "self" {
        let name = build.info.pipeline_name.clone().ok_or("`set_pipeline: self` needs a build of a pipeline")?;
        if team_name != build.info.team_name {
            return Err("`set_pipeline: self` cannot name another team".into());
        }
        PipelineRef { name, instance_vars: build.info.pipeline_instance_vars.clone().unwrap_or_default() }
    } else {
        let instance_vars = match &plan.instance_vars {
            Value::Object(map) if !map.is_empty() => Value::Object(map.clone()).to_string(),
            _ => String::new(),
        };
        PipelineRef { name: plan.name.clone(), instance_vars }
    };
    let spec = config::storage_spec(&pipeline)?;
    let current = match db.find_pipeline(&team.name, &reference).await.map_err(|e| e.to_string())? {
        Some(existing) => db.pipeline_config(existing.id).await.map_err(|e| e.to_string())?.map(|(config, _)| config),
        None => None,
    };
    let changed = current.as_deref() != Some(spec.config.as_str());
    if changed {
        log.notice(&format!("setting pipeline: {}", display_name(&reference)));
        db.save_pipeline(team.id, &reference, &spec, None, false).await.map_err(|e| e.to_string())?;
        let _ = db.notify(Channel::Scheduler, "").await;
        let _ = db.notify(Channel::Checker, "").await;
        log.notice("done");
    } else {
        log.notice("no changes to apply.");
    }
    Ok(changed)
}

/// The pipeline `document` (the file `file`) configures and what is wrong
/// with it, size limits included. Vars given here and local vars are
/// filled in now; the rest (secrets) stay as ((vars)) for the pipeline's
/// own builds to look up.
pub(crate) fn configure(
    file: &str,
    document: Value,
    vars: &Map<String, Value>,
    scope: &Scope,
) -> Result<(config::Pipeline, config::Validation), String> {
    let lookup = |reference: &vars::VarRef| -> Result<Option<Value>, String> {
        Ok(match &reference.source {
            Some(source) if source == "." => scope.local_var(&reference.path),
            Some(_) => None,
            None => vars.get(&reference.path).cloned(),
        })
    };
    let document = vars::interpolate(&document, &lookup, vars::Undefined::Keep).map_err(|e| e.to_string())?;
    let pipeline = config::from_value(document).map_err(|e| format!("{file}: {e}"))?;
    let mut validation = config::validate(&pipeline);
    if validation.errors.is_empty() {
        let json = serde_json::to_value(&pipeline).map_err(|e| e.to_string())?;
        validation.errors = crate::engine::compile::size_errors(&json);
    }
    Ok((pipeline, validation))
}

/// `name/key:value,...` as `fly` names an instanced pipeline (nested
/// instance vars by dotted keys).
fn display_name(reference: &PipelineRef) -> String {
    let vars: Value = serde_json::from_str(&reference.instance_vars).unwrap_or(Value::Null);
    let mut pairs = Vec::new();
    if let Value::Object(map) = &vars {
        flatten_vars("", map, &mut pairs);
    }
    if pairs.is_empty() { reference.name.clone() } else { format!("{}/{}", reference.name, pairs.join(",")) }
}

fn flatten_vars(prefix: &str, map: &Map<String, Value>, pairs: &mut Vec<String>) {
    for (key, value) in map {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            Value::Object(nested) if !nested.is_empty() => flatten_vars(&path, nested, pairs),
            Value::String(text) => pairs.push(format!("{path}:{text}")),
            other => pairs.push(format!("{path}:{other}")),
        }
    }
}
