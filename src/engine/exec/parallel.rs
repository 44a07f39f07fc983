//! Steps that run other steps: `do` (in order), `in_parallel` and `across`
//! (concurrently, with limits and `fail_fast`).

use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;

use super::{BoxedOutcome, Outcome, StepContext, run};
use crate::engine::plan::{AcrossPlan, InParallelPlan, MAX_STEP_DEPTH, Plan};
use crate::engine::state::Scope;

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
    let lengths: Vec<usize> = value_lists.iter().map(Vec::len).collect();
    if let Err(message) = crate::config::across::combinations(&lengths).map_err(|e| e.to_string()) {
        ctx.build.step_error(&plan.id, &message);
        return Outcome::Errored(message);
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

    let template: Value = match serde_json::from_str(&across.substep_template) {
        Ok(template) => template,
        Err(err) => {
            let message = format!("across: unreadable substep template: {err}");
            ctx.build.step_error(&plan.id, &message);
            return Outcome::Errored(message);
        }
    };
    let combinations = cartesian(&value_lists);
    let mut substeps = Vec::with_capacity(combinations.len());
    for (index, values) in combinations.iter().enumerate() {
        let scope = Scope::child(&ctx.scope);
        for (var, value) in across.vars.iter().zip(values) {
            scope.set_local_var(&var.name, value.clone());
        }
        let substep = ctx
            .build
            .interpolate_local(&template, &scope)
            .map_err(|e| e.to_string())
            .and_then(|value| serde_json::from_value::<Plan>(value).map_err(|e| e.to_string()))
            .map(|mut substep| {
                substep.renumber_as_substep(&plan.id, index);
                substep
            });
        match substep {
            Ok(substep) => substeps.push((substep, scope)),
            Err(message) => {
                ctx.build.step_error(&plan.id, &format!("across: {message}"));
                return Outcome::Errored(message);
            }
        }
    }
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

/// Every combination of one value from each list, the first list varying slowest.
fn cartesian(lists: &[Vec<Value>]) -> Vec<Vec<Value>> {
    lists.iter().fold(vec![Vec::new()], |combinations, values| {
        combinations
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |value| {
                    let mut combination = prefix.clone();
                    combination.push(value.clone());
                    combination
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::cartesian;

    #[test]
    fn combinations_vary_the_last_list_fastest() {
        let lists = vec![vec![json!(1), json!(2)], vec![json!("a"), json!("b")]];
        assert_eq!(
            cartesian(&lists),
            vec![
                vec![json!(1), json!("a")],
                vec![json!(1), json!("b")],
                vec![json!(2), json!("a")],
                vec![json!(2), json!("b")]
            ]
        );
        assert_eq!(cartesian(&[]), vec![Vec::<serde_json::Value>::new()]);
        assert!(cartesian(&[vec![]]).is_empty());
    }
}
