//! Running a plan. Each step kind lives in its own file; composite steps
//! (`do`, `in_parallel`, `across`) and modifiers (hooks, `try`, `timeout`,
//! `retry`) are small wrappers around [`run`], so their semantics are
//! composition, not flags on one giant step.
//!
//! Cancellation: every step runs under a token. Aborting the build cancels
//! the build's token; `timeout` and `in_parallel`'s `fail_fast` cancel child
//! tokens of their own. A cancelled step reports [`Outcome::Interrupted`]
//! and whoever cancelled it decides what that means (a timeout is a
//! failure; at the build's root it is an abort).

mod artifacts;
mod delegate;
mod hooks;
mod leaf;
pub(crate) mod load_var;
mod modifiers;
pub(crate) mod parallel;
mod resource_steps;
pub(crate) mod set_pipeline;
mod step_error;
mod task;

pub use step_error::StepError;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::plan::{MAX_STEP_DEPTH, Plan, Step};
use super::state::{BuildState, Scope};

/// How a step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded,
    /// The step ran and failed (non-zero exit, failed hook, timeout).
    Failed,
    /// The step could not run as configured, or the system failed it.
    Errored(String),
    /// The step was cancelled before it finished.
    Interrupted,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        matches!(self, Outcome::Succeeded)
    }
}

/// What a step runs with: the build, the cancellation that applies to it,
/// and the scope of artifacts and local vars it sees.
#[derive(Clone)]
pub struct StepContext {
    pub build: Arc<BuildState>,
    pub cancel: CancellationToken,
    pub scope: Arc<Scope>,
    /// The span that steps started here are children of (the build's, a
    /// hook's, or the step's own inside a leaf step).
    pub trace: opentelemetry::Context,
    /// How many steps (and `across` vars) enclose the step: the stack a
    /// step's run takes grows with it, so it is held to [`MAX_STEP_DEPTH`].
    pub depth: usize,
}

impl StepContext {
    /// The same context under another cancellation token.
    pub fn with_cancel(&self, cancel: CancellationToken) -> StepContext {
        StepContext { cancel, ..self.clone() }
    }

    /// The same context with spans started under `trace`.
    pub fn with_trace(&self, trace: opentelemetry::Context) -> StepContext {
        StepContext { trace, ..self.clone() }
    }

    /// The context of a step one level further in, unless that is deeper
    /// than any step may nest. Plans are measured before they run; this
    /// also covers what only running reveals (substeps built from vars).
    pub fn nested(&self) -> Result<StepContext, StepError> {
        if self.depth >= MAX_STEP_DEPTH {
            return Err(StepError::TooDeep);
        }
        Ok(StepContext { depth: self.depth + 1, ..self.clone() })
    }

    /// For hooks that must run although the step was cancelled (`on_abort`,
    /// `ensure`): a token cancelled by nothing but a second abort request.
    pub fn uncancelled(&self) -> StepContext {
        self.with_cancel(self.build.hook_cancel.clone())
    }
}

pub type BoxedOutcome<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// Runs `plan` to its outcome.
pub fn run<'a>(plan: &'a Plan, ctx: &'a StepContext) -> BoxedOutcome<'a> {
    Box::pin(async move {
        if ctx.cancel.is_cancelled() {
            return Outcome::Interrupted;
        }
        let ctx = &match ctx.nested() {
            Ok(nested) => nested,
            Err(err) => {
                let message = err.to_string();
                ctx.build.step_error(&plan.id, &message);
                return Outcome::Errored(message);
            }
        };
        match &plan.step {
            Step::Do(steps) => parallel::sequence(steps, ctx).await,
            Step::InParallel(parallel) => parallel::in_parallel(parallel, ctx).await,
            Step::Across(across) => parallel::across(plan, across, ctx).await,
            Step::OnSuccess(hook) => hooks::on_success(&hook.step, &hook.next.plan, ctx).await,
            Step::OnFailure(hook) => hooks::on_failure(&hook.step, &hook.next.plan, ctx).await,
            Step::OnAbort(hook) => hooks::on_abort(&hook.step, &hook.next.plan, ctx).await,
            Step::OnError(hook) => hooks::on_error(&hook.step, &hook.next.plan, ctx).await,
            Step::Ensure(hook) => hooks::ensure(&hook.step, &hook.next.plan, ctx).await,
            Step::Try(t) => modifiers::try_step(&t.step, ctx).await,
            Step::Timeout(t) => modifiers::timeout(&t.step, &t.duration, ctx).await,
            Step::Retry(attempts) => modifiers::retry(attempts, ctx).await,
            _ => leaf::run(plan, ctx).await,
        }
    })
}
