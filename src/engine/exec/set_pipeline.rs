//! The `set_pipeline` step: a build configures a pipeline (its own with
//! `self`, another of its team, or, from the main team, of any team).

use serde_json::{Map, Value};

use super::StepError;
use super::delegate::StepDelegate;
use super::{Outcome, StepContext};
use crate::auth::roles::MAIN_TEAM;
use crate::config::{self, vars};
use crate::db::{Channel, PipelineRef};
use crate::engine::event::{BuildEvent, Origin};
use crate::engine::plan::SetPipelinePlan;
use crate::engine::state::Scope;
use crate::engine::step_log::StepLog;

pub async fn run(plan: &SetPipelinePlan, delegate: &StepDelegate, ctx: &StepContext) -> Outcome {
    let changed = set(plan, ctx, &delegate.log()).await;
    match changed {
        Ok(changed) => {
            let event = BuildEvent::SetPipelineChanged { origin: Origin::step(delegate.plan_id()), changed };
            delegate.finished(event, None);
            Outcome::Succeeded
        }
        Err(err) => delegate.errored(err.to_string()),
    }
}

/// The static vars of the pipeline being set: `var_files`, then `vars`, then
/// `instance_vars`, a later one winning over an earlier one of the same name.
async fn static_vars(plan: &SetPipelinePlan, ctx: &StepContext) -> Result<Map<String, Value>, StepError> {
    let mut vars = Map::new();
    for file in &plan.var_files {
        let bytes = super::artifacts::read_file(ctx, file).await?;
        match config::yaml_value(&bytes).map_err(|e| format!("var file {file}: {e}"))? {
            Value::Object(map) => vars.extend(map),
            Value::Null => {}
            _ => return Err(StepError::Invalid(format!("var file {file} must be a map of names to values"))),
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
async fn set(plan: &SetPipelinePlan, ctx: &StepContext, log: &StepLog) -> Result<bool, StepError> {
    // Checked here too: a name built from across vars is known only now.
    if let Some(problem) = config::unusable_name(&plan.name) {
        return Err(StepError::Invalid(format!("pipeline name {problem}")));
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
        return Err(StepError::Invalid(format!(
            "invalid pipeline configuration in {}:\n{}",
            plan.file,
            validation.errors.join("\n")
        )));
    }

    let team_name = if plan.team.is_empty() { build.info.team_name.clone() } else { plan.team.clone() };
    if team_name != build.info.team_name && build.info.team_name != MAIN_TEAM {
        // Concourse's words: scripts around `fly` look for them.
        return Err(StepError::Invalid(format!(
            "only main team can set another team's pipeline (this build is of team '{}', the pipeline of team '{team_name}')",
            build.info.team_name
        )));
    }
    let team = db
        .find_team(&team_name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("team '{team_name}' does not exist"))?;
    let (name, instance_vars) = if plan.name == "self" {
        let name = build.info.pipeline_name.clone().ok_or("`set_pipeline: self` needs a build of a pipeline")?;
        if team_name != build.info.team_name {
            return Err("`set_pipeline: self` cannot name another team".into());
        }
        (name, build.info.pipeline_instance_vars.clone())
    } else {
        let instance_vars = match &plan.instance_vars {
            Value::Object(map) if !map.is_empty() => Some(plan.instance_vars.clone()),
            _ => None,
        };
        (plan.name.clone(), instance_vars)
    };
    // Stored instance vars are their canonical JSON text.
    let reference =
        PipelineRef { name, instance_vars: instance_vars.as_ref().map(Value::to_string).unwrap_or_default() };
    let spec = config::storage_spec(&pipeline).map_err(|e| e.to_string())?;
    let current = match db.find_pipeline(&team.name, &reference).await.map_err(|e| e.to_string())? {
        Some(existing) => db.pipeline_config(existing.id).await.map_err(|e| e.to_string())?.map(|(config, _)| config),
        None => None,
    };
    let changed = current.as_ref() != Some(&spec.config);
    if changed {
        log.notice(&format!("setting pipeline: {}", display_name(&reference.name, instance_vars.as_ref())));
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
) -> Result<(config::Pipeline, config::Validation), StepError> {
    let lookup = |reference: &vars::VarRef| -> Option<Value> {
        match &reference.source {
            Some(source) if source == "." => scope.local_var(&reference.path),
            Some(_) => None,
            None => vars.get(&reference.path).cloned(),
        }
    };
    let document = vars::interpolate(&document, &lookup, vars::Undefined::Keep)?;
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
fn display_name(name: &str, instance_vars: Option<&Value>) -> String {
    let mut pairs = Vec::new();
    if let Some(Value::Object(map)) = instance_vars {
        flatten_vars("", map, &mut pairs);
    }
    if pairs.is_empty() { name.to_string() } else { format!("{name}/{}", pairs.join(",")) }
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
