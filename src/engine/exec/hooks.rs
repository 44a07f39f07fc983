//! `on_success`, `on_failure`, `on_abort`, `on_error` and `ensure`.

use super::{Outcome, StepContext, run};
use crate::engine::plan::{Plan, Step};

/// The hook runs after success; its outcome becomes the step's.
pub async fn on_success(step: &Plan, hook: &Plan, ctx: &StepContext) -> Outcome {
    match run(step, ctx).await {
        // A put's own get of what it pushed is a step of the build, not a hook.
        Outcome::Succeeded if is_implicit_get(step, hook) => run(hook, ctx).await,
        Outcome::Succeeded => ctx.build.hook(ctx, "on_success", hook).await,
        other => other,
    }
}

/// Whether `hook` is the get a put compiles to after itself.
fn is_implicit_get(step: &Plan, hook: &Plan) -> bool {
    matches!((&step.step, &hook.step), (Step::Put(_), Step::Get(get)) if get.version_from.as_deref() == Some(step.id.as_str()))
}

/// The hook runs after a failure; the step stays failed unless the hook errors.
pub async fn on_failure(step: &Plan, hook: &Plan, ctx: &StepContext) -> Outcome {
    match run(step, ctx).await {
        Outcome::Failed => match ctx.build.hook(ctx, "on_failure", hook).await {
            Outcome::Errored(message) => Outcome::Errored(message),
            Outcome::Interrupted => Outcome::Interrupted,
            _ => Outcome::Failed,
        },
        other => other,
    }
}

/// The hook runs when the build is aborted (not on a timeout), although
/// the build is being cancelled.
pub async fn on_abort(step: &Plan, hook: &Plan, ctx: &StepContext) -> Outcome {
    let outcome = run(step, ctx).await;
    if outcome == Outcome::Interrupted && ctx.build.is_aborted() {
        ctx.build.hook(&ctx.uncancelled(), "on_abort", hook).await;
    }
    outcome
}

/// The hook runs when the step errored (a system error, not a failure).
pub async fn on_error(step: &Plan, hook: &Plan, ctx: &StepContext) -> Outcome {
    let outcome = run(step, ctx).await;
    if let Outcome::Errored(message) = &outcome
        && let Outcome::Errored(hook_message) = ctx.build.hook(&ctx.uncancelled(), "on_error", hook).await
    {
        return Outcome::Errored(format!("{message}; on_error hook: {hook_message}"));
    }
    outcome
}

/// The hook always runs, also when the step was cancelled; the step
/// succeeds only if both did.
pub async fn ensure(step: &Plan, hook: &Plan, ctx: &StepContext) -> Outcome {
    let outcome = run(step, ctx).await;
    let hook_ctx = if ctx.cancel.is_cancelled() { ctx.uncancelled() } else { ctx.clone() };
    let hook_outcome = ctx.build.hook(&hook_ctx, "ensure", hook).await;
    match (outcome, hook_outcome) {
        (Outcome::Interrupted, _) => Outcome::Interrupted,
        (Outcome::Errored(message), _) | (_, Outcome::Errored(message)) => Outcome::Errored(message),
        (_, Outcome::Interrupted) => Outcome::Interrupted,
        (Outcome::Succeeded, Outcome::Succeeded) => Outcome::Succeeded,
        _ => Outcome::Failed,
    }
}
