//! Steps that do work themselves rather than run other steps.

use super::{Outcome, StepContext, artifacts, load_var, resource_steps, set_pipeline, task};
use crate::engine::plan::{Plan, Step};
use crate::engine::spans::{self, StepSpanFacts};
use crate::metric;
use opentelemetry::trace::{FutureExt, TraceContextExt};

/// Runs a leaf step, inside its span when it is one that does work of its
/// own (a check's span is its build's).
pub async fn run(plan: &Plan, ctx: &StepContext) -> Outcome {
    let (step_type, name, resource) = match &plan.step {
        Step::Task(task) => ("task", task.name.as_str(), None),
        Step::Get(get) => ("get", get.name.as_str(), Some(get.resource.as_str())),
        Step::Put(put) => ("put", put.name.as_str(), Some(put.resource.as_str())),
        Step::LoadVar(load) => ("load_var", load.name.as_str(), None),
        Step::SetPipeline(set) => ("set_pipeline", set.name.as_str(), None),
        _ => return run_step(plan, ctx).await,
    };
    let facts = StepSpanFacts {
        plan_id: &plan.id,
        step_type,
        name,
        resource: resource.filter(|r| !r.is_empty()),
        url: ctx.build.build_env().build_url(),
    };
    let trace = spans::start_step(&ctx.trace, &facts);
    ctx.build.step_initializing(&plan.id, step_type);
    let started = std::time::Instant::now();
    // Current too, for the spans of code that takes no context (the database's).
    let outcome = run_step(plan, &ctx.with_trace(trace.clone())).with_context(trace.clone()).await;
    let outcome = ctx.build.redact_outcome(outcome);
    let span = trace.span().span_context().clone();
    ctx.build.step_ended(&plan.id);
    metric::StepFinished { step_type, duration: started.elapsed(), span: &span }.emit();
    spans::end_step(&trace, &outcome, ctx.build.exit_status(&plan.id), ctx.build.timed_out());
    outcome
}

async fn run_step(plan: &Plan, ctx: &StepContext) -> Outcome {
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
