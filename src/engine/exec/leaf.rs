//! Steps that do work themselves rather than run other steps.

use super::{Outcome, StepContext, artifacts, load_var, resource_steps, set_pipeline, task};
use crate::engine::plan::{Plan, Step};

pub async fn run(plan: &Plan, ctx: &StepContext) -> Outcome {
    let id = plan.id.as_str();
    match &plan.step {
        Step::Task(task_plan) => task::run(id, task_plan, ctx).await,
        Step::Get(get) => resource_steps::get(id, get, ctx).await,
        Step::Put(put) => resource_steps::put(id, put, ctx).await,
        Step::Check(check) => resource_steps::check(id, check, ctx).await,
        Step::LoadVar(load) => load_var::run(id, load, ctx).await,
        Step::SetPipeline(set) => set_pipeline::run(id, set, ctx).await,
        Step::ArtifactInput(input) => artifacts::input(id, input, ctx).await,
        Step::ArtifactOutput(output) => artifacts::output(id, output, ctx).await,
        _ => {
            let message = "not a step that runs on its own".to_string();
            ctx.build.step_error(id, &message);
            Outcome::Errored(message)
        }
    }
}
