//! Steps that do work themselves rather than run other steps.

use super::{Outcome, StepContext};
use crate::engine::plan::Plan;

pub async fn run(plan: &Plan, ctx: &StepContext) -> Outcome {
    let message = "this step type cannot run yet".to_string();
    ctx.build.step_error(&plan.id, &message);
    Outcome::Errored(message)
}
