//! `try`, `timeout` and `attempts` (retry).

use std::time::Duration;

use super::{Outcome, StepContext, run};
use crate::engine::plan::Plan;

/// Failures and errors become success; only cancellation passes through.
pub async fn try_step(step: &Plan, ctx: &StepContext) -> Outcome {
    match run(step, ctx).await {
        Outcome::Interrupted => Outcome::Interrupted,
        _ => Outcome::Succeeded,
    }
}

/// Cancels the step when the duration passes; that counts as a failure.
pub async fn timeout(step: &Plan, duration: &str, ctx: &StepContext) -> Outcome {
    let limit: Duration = match crate::duration::parse(duration) {
        Ok(limit) => limit,
        Err(message) => {
            ctx.build.step_error(&step.id, &format!("timeout: {message}"));
            return Outcome::Errored(message.to_string());
        }
    };
    let timer = ctx.cancel.child_token();
    let inner = ctx.with_cancel(timer.clone());
    let mut running = run(step, &inner);
    tokio::select! {
        outcome = &mut running => outcome,
        _ = tokio::time::sleep(limit) => {
            timer.cancel();
            let outcome = running.await;
            if ctx.cancel.is_cancelled() {
                return Outcome::Interrupted;
            }
            ctx.build.step_error(&step.id, &format!("timeout exceeded ({duration})"));
            ctx.build.record_timeout();
            match outcome {
                // The step finished just as the timer fired.
                Outcome::Succeeded => Outcome::Succeeded,
                _ => Outcome::Failed,
            }
        }
    }
}

/// Runs the attempts in order until one succeeds; the last outcome stands.
/// Cancellation stops retrying.
pub async fn retry(attempts: &[Plan], ctx: &StepContext) -> Outcome {
    let mut outcome = Outcome::Errored("no attempts".into());
    for attempt in attempts {
        outcome = run(attempt, ctx).await;
        if outcome.succeeded() || outcome == Outcome::Interrupted || ctx.cancel.is_cancelled() {
            break;
        }
    }
    outcome
}
