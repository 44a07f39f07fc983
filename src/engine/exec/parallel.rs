//! Steps that run other steps: `do` (in order), `in_parallel` and `across`
//! (concurrently, with limits and `fail_fast`).

use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;

use super::{BoxedOutcome, Outcome, StepContext, run};
use crate::config::across::{MAX_SUBSTEPS_BYTES, TooBigAcross};
use crate::config::vars::InterpolationError;
use crate::engine::plan::{AcrossPlan, InParallelPlan, MAX_STEP_DEPTH, Plan};
use crate::engine::state::Scope;
use crate::nesting::text_size;

/// Runs steps one after another, stopping at the first that does not succeed.
pub async fn sequence(steps: &[Plan], ctx: &StepContext) -> Outcome {
    for step in steps {
        let outcome = run(step, ctx).await;
        if !outcome.succeeded() {
            return outcome;
        }
    }
    Outcome::Succeeded
}

pub async fn in_parallel(plan: &InParallelPlan, ctx: &StepContext) -> Outcome {
    let limit = plan.limit.map(|l| l as usize).filter(|l| *l > 0);
    concurrently(plan.steps.len(), limit, plan.fail_fast, ctx, |i, ctx| {
        Box::pin(async move { run(&plan.steps[i], &ctx).await })
    })
    .await
}

/// Runs `count` futures made by `start`, at most `limit` at once. With
/// `fail_fast`, the first failure cancels the others and starts no more.
async fn concurrently<'a, F>(
    count: usize,
    limit: Option<usize>,
    fail_fast: bool,
    ctx: &'a StepContext,
    start: F,
) -> Outcome
where
    F: Fn(usize, StepContext) -> BoxedOutcome<'a>,
{
    let group = ctx.cancel.child_token();
    let limit = limit.unwrap_or(count).max(1);
    let mut running = FuturesUnordered::new();
    let mut next = 0;
    let mut outcomes = Vec::with_capacity(count);
    loop {
        while next < count && running.len() < limit && !group.is_cancelled() {
            running.push(start(next, ctx.with_cancel(group.clone())));
            next += 1;
        }
        let Some(outcome) = running.next().await else { break };
        if fail_fast && !outcome.succeeded() && outcome != Outcome::Interrupted {
            group.cancel();
        }
        outcomes.push(outcome);
    }
    if ctx.cancel.is_cancelled() {
        return Outcome::Interrupted;
    }
    if let Some(Outcome::Errored(message)) = outcomes.iter().find(|o| matches!(o, Outcome::Errored(_))) {
        return Outcome::Errored(message.clone());
    }
    if outcomes.len() == count && outcomes.iter().all(Outcome::succeeded) {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    }
}

/// One combination of across values per substep: the substep template is
/// interpolated with the combination's values as local vars, and runs in a
/// scope of its own.
pub async fn across(plan: &Plan, across: &AcrossPlan, ctx: &StepContext) -> Outcome {
    let mut value_lists = Vec::with_capacity(across.vars.len());
    for var in &across.vars {
        match ctx.build.interpolate(&var.values, &ctx.scope).await {
            Ok(Value::Array(values)) => value_lists.push(values),
            Ok(other) => {
                let message = format!("across: values of '{}' must be a list, got {other}", var.name);
                ctx.build.step_error(&plan.id, &message);
                return Outcome::Errored(message);
            }
            Err(err) => {
                let message = err.to_string();
                ctx.build.step_error(&plan.id, &message);
                return Outcome::Errored(message);
            }
        }
    }
    // Each var is a level of nesting when the substeps run.
    if ctx.depth + across.vars.len() > MAX_STEP_DEPTH {
        let message = format!("steps nest more than {MAX_STEP_DEPTH} deep");
        ctx.build.step_error(&plan.id, &message);
        return Outcome::Errored(message);
    }
    let mut limits = Vec::with_capacity(across.vars.len());
    for var in &across.vars {
        match &var.max_in_flight {
            Value::Null => limits.push(Some(1)),
            Value::String(all) if all == "all" => limits.push(None),
            Value::Number(n) if n.as_u64().is_some_and(|n| n > 0) => limits.push(n.as_u64().map(|n| n as usize)),
            other => {
                let message = format!(
                    "across: max_in_flight of '{}' must be a positive number or \"all\", got {other}",
                    var.name
                );
                ctx.build.step_error(&plan.id, &message);
                return Outcome::Errored(message);
            }
        }
    }

    let substeps = match substeps(&plan.id, across, &value_lists, &ctx.scope) {
        Ok(substeps) => substeps,
        Err(err) => {
            let message = err.to_string();
            ctx.build.step_error(&plan.id, &message);
            return Outcome::Errored(message);
        }
    };
    ctx.build.across_substeps(&plan.id, substeps.iter().map(|(s, _)| s.public()).collect());

    // One level per var, each with that var's max_in_flight.
    run_level(&substeps, &value_lists, &limits, 0, 0, across.fail_fast, ctx).await
}

/// Runs the substeps under one value of var `level`, nesting for the next
/// vars; `offset` is the index of the first substep of this subtree.
fn run_level<'a>(
    substeps: &'a [(Plan, Arc<Scope>)],
    value_lists: &'a [Vec<Value>],
    limits: &'a [Option<usize>],
    level: usize,
    offset: usize,
    fail_fast: bool,
    ctx: &'a StepContext,
) -> BoxedOutcome<'a> {
    Box::pin(async move {
        if level == value_lists.len() {
            let (substep, scope) = &substeps[offset];
            let sub_ctx = StepContext { scope: scope.clone(), ..ctx.clone() };
            return run(substep, &sub_ctx).await;
        }
        let width: usize = value_lists[level + 1..].iter().map(Vec::len).product();
        // Within the depth `across` checked for all its vars.
        let ctx = &StepContext { depth: ctx.depth + 1, ..ctx.clone() };
        concurrently(value_lists[level].len(), limits[level], fail_fast, ctx, move |i, ctx| {
            Box::pin(async move {
                run_level(substeps, value_lists, limits, level + 1, offset + i * width, fail_fast, &ctx).await
            })
        })
        .await
    })
}

/// Why an `across`'s substeps cannot be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InvalidSubsteps {
    #[error(transparent)]
    TooBig(#[from] TooBigAcross),
    /// The template the plan was built with is not JSON: a bug.
    #[error("across: unreadable substep template: {0}")]
    UnreadableTemplate(#[source] serde_json::Error),
    #[error("across: its substeps come to more than {MAX_SUBSTEPS_BYTES} bytes")]
    TooLarge,
    #[error("across: {0}")]
    Interpolation(#[from] InterpolationError),
    /// A substep, its values filled in, is not a step.
    #[error("across: {0}")]
    NotAStep(#[source] serde_json::Error),
}

/// The substeps of `across` (the step `plan_id`), one per combination of
/// `value_lists`: its template interpolated with the combination's values
/// as local vars, each in a scope of its own under `parent`. There may be
/// at most [`MAX_ACROSS_COMBINATIONS`](crate::config::across::MAX_ACROSS_COMBINATIONS),
/// coming to at most [`MAX_SUBSTEPS_BYTES`] together, counted as they are made.
pub(crate) fn substeps(
    plan_id: &str,
    across: &AcrossPlan,
    value_lists: &[Vec<Value>],
    parent: &Arc<Scope>,
) -> Result<Vec<(Plan, Arc<Scope>)>, InvalidSubsteps> {
    let lengths: Vec<usize> = value_lists.iter().map(Vec::len).collect();
    crate::config::across::combinations(&lengths)?;
    let template: Value =
        serde_json::from_str(&across.substep_template).map_err(InvalidSubsteps::UnreadableTemplate)?;
    let mut bytes = 0_usize;
    let mut substeps = Vec::new();
    for (index, combination) in combinations(&lengths).into_iter().enumerate() {
        let scope = Scope::child(parent);
        for ((var, values), &chosen) in across.vars.iter().zip(value_lists).zip(&combination) {
            bytes = bytes.saturating_add(text_size(&values[chosen]));
            scope.set_local_var(&var.name, values[chosen].clone());
        }
        if bytes > MAX_SUBSTEPS_BYTES {
            return Err(InvalidSubsteps::TooLarge);
        }
        let substep = scope.interpolate_local(&template)?;
        bytes = bytes.saturating_add(text_size(&substep));
        if bytes > MAX_SUBSTEPS_BYTES {
            return Err(InvalidSubsteps::TooLarge);
        }
        let mut substep: Plan = serde_json::from_value(substep).map_err(InvalidSubsteps::NotAStep)?;
        substep.renumber_as_substep(plan_id, index);
        substeps.push((substep, scope));
    }
    Ok(substeps)
}

/// Every combination of one position in each list of these lengths, the
/// first list varying slowest.
fn combinations(lengths: &[usize]) -> Vec<Vec<usize>> {
    lengths.iter().fold(vec![Vec::new()], |combinations, &length| {
        combinations
            .into_iter()
            .flat_map(|prefix| {
                (0..length).map(move |position| {
                    let mut combination = prefix.clone();
                    combination.push(position);
                    combination
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::plan::AcrossVar;

    #[test]
    fn combinations_vary_the_last_list_fastest() {
        assert_eq!(combinations(&[2, 2]), vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![1, 1]]);
        assert_eq!(combinations(&[]), vec![Vec::<usize>::new()]);
        assert!(combinations(&[0]).is_empty());
    }

    fn across(vars: &[&str], template: Value) -> AcrossPlan {
        AcrossPlan {
            vars: vars.iter().map(|name| AcrossVar { name: name.to_string(), ..AcrossVar::default() }).collect(),
            substep_template: template.to_string(),
            fail_fast: false,
        }
    }

    #[test]
    fn substeps_are_the_template_with_each_combination_in_a_scope_of_its_own() {
        let across = across(&["a", "b"], json!({ "id": "t", "task": { "name": "((.:a))-((.:b))" } }));
        let values = [vec![json!("x"), json!("y")], vec![json!(1)]];
        let substeps = substeps("5", &across, &values, &Scope::root()).unwrap();
        let names: Vec<(String, String, Option<Value>)> = substeps
            .iter()
            .map(|(plan, scope)| match &plan.step {
                crate::engine::plan::Step::Task(task) => (plan.id.clone(), task.name.clone(), scope.local_var("a")),
                other => panic!("not a task: {other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [("5/0/0".into(), "x-1".into(), Some(json!("x"))), ("5/1/0".into(), "y-1".into(), Some(json!("y")))]
        );
    }

    #[test]
    fn substeps_copying_a_long_step_or_long_values_stop_at_the_limit() {
        // 4,096 copies of a 32 KiB step: 128 MiB.
        let long_step =
            across(&["a"], json!({ "id": "t", "task": { "name": "t", "params": { "P": "x".repeat(32 * 1024) } } }));
        let many = [(0..4096).map(|i| json!(i)).collect::<Vec<_>>()];
        let started = std::time::Instant::now();
        let Err(err) = substeps("1", &long_step, &many, &Scope::root()) else { panic!("made them all") };
        assert_eq!(err.to_string(), format!("across: its substeps come to more than {MAX_SUBSTEPS_BYTES} bytes"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        // A 1 MiB value in each of 64 substeps of a short step.
        let short_step = across(&["a", "b"], json!({ "id": "t", "task": { "name": "t" } }));
        let long_values = [vec![json!("x".repeat(1024 * 1024))], (0..64).map(|i| json!(i)).collect()];
        assert!(substeps("1", &short_step, &long_values, &Scope::root()).is_err());
        let fewer = [long_values[0].clone(), (0..60).map(|i| json!(i)).collect()];
        assert_eq!(substeps("1", &short_step, &fewer, &Scope::root()).unwrap().len(), 60);
    }
}
