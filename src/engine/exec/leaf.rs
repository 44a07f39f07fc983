//! Steps that do work themselves rather than run other steps.

use super::delegate::StepDelegate;
use super::{Outcome, StepContext, artifacts, load_var, resource_steps, set_pipeline, task};
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::db::StepRecord;
use crate::engine::event::BuildEvent;
use crate::engine::journal::Resume;
use crate::engine::plan::{Plan, Step};
use crate::engine::step_process::StepProcess;
use crate::resource::ScriptRunner;
use crate::runtime::{Artifact, OutputSink, RuntimeError, StepObserver, StepOutcome, StepSpec};
use crate::telemetry::spans::StepSpan;
use opentelemetry::trace::FutureExt;

/// Runs a leaf step, inside its span when it is one that does work of its
/// own (a check's span is its build's). In a build taken up again, a step
/// that had finished is not run again (see `engine::journal`).
pub async fn run(plan: &Plan, ctx: &StepContext) -> Outcome {
    let recorded = is_recorded(&plan.step);
    if recorded && let Resume::Finished(finished) = ctx.build.resume(&plan.id) {
        return ctx.build.restore(&plan.id, &ctx.scope, &finished);
    }
    ctx.build.begin_leaf(&plan.id);
    let outcome = run_with_delegate(plan, ctx).await;
    ctx.build.end_leaf(&plan.id, &outcome, recorded).await;
    outcome
}

/// Whether a step's end is recorded for a build taken up again. Steps that
/// emit nothing of their own and change nothing outside the build
/// (`load_var`, an uploaded input) simply run again instead: a loaded var
/// may be a secret, which is not stored.
fn is_recorded(step: &Step) -> bool {
    !matches!(step, Step::LoadVar(_) | Step::ArtifactInput(_))
}

/// The kind of a leaf step, and whether it gets a span of its own (a
/// check's span is its build's; artifacts crossing in or out do no work).
fn kind(plan: &Plan) -> (&'static str, Option<(&str, Option<&str>)>) {
    match &plan.step {
        Step::Task(task) => ("task", Some((task.name.as_str(), None))),
        Step::Get(get) => ("get", Some((get.name.as_str(), Some(get.resource.as_str())))),
        Step::Put(put) => ("put", Some((put.name.as_str(), Some(put.resource.as_str())))),
        Step::LoadVar(load) => ("load_var", Some((load.name.as_str(), None))),
        Step::SetPipeline(set) => ("set_pipeline", Some((set.name.as_str(), None))),
        Step::Check(_) => ("check", None),
        Step::ArtifactInput(_) => ("artifact_input", None),
        Step::ArtifactOutput(_) => ("artifact_output", None),
        _ => ("unknown", None),
    }
}

async fn run_with_delegate(plan: &Plan, ctx: &StepContext) -> Outcome {
    let (step_type, spanned) = kind(plan);
    let trace = match spanned {
        Some((name, resource)) => StepSpan {
            plan_id: &plan.id,
            step_type,
            name,
            resource: resource.filter(|r| !r.is_empty()),
            url: ctx.build.build_env().build_url(),
        }
        .start(&ctx.trace),
        None => ctx.trace.clone(),
    };
    let delegate = StepDelegate::new(ctx.build.clone(), &plan.id, step_type, trace.clone(), spanned.is_some());
    // Current too, for the spans of code that takes no context (the database's).
    let outcome = run_step(plan, &delegate, &ctx.with_trace(trace.clone())).with_context(trace).await;
    let outcome = ctx.build.redact_outcome(outcome);
    delegate.ended(&outcome);
    outcome
}

async fn run_step(plan: &Plan, delegate: &StepDelegate, ctx: &StepContext) -> Outcome {
    match &plan.step {
        Step::Task(task_plan) => task::run(task_plan, delegate, ctx).await,
        Step::Get(get) => resource_steps::get(get, delegate, ctx).await,
        Step::Put(put) => resource_steps::put(put, delegate, ctx).await,
        Step::Check(check) => resource_steps::check(check, delegate, ctx).await,
        Step::LoadVar(load) => load_var::run(load, delegate, ctx).await,
        Step::SetPipeline(set) => set_pipeline::run(set, delegate, ctx).await,
        Step::ArtifactInput(input) => artifacts::input(input, delegate, ctx).await,
        Step::ArtifactOutput(output) => artifacts::output(output, delegate, ctx).await,
        _ => delegate.errored("not a step that runs on its own".to_string()),
    }
}

/// A leaf step's process: started and announced (its `start_events` stored
/// with the record that it started), or, in a build taken up again, found
/// where it was; stopped once the step's end is recorded.
pub struct LeafProcess<'a> {
    process: StepProcess<'a>,
    /// In a build taken up again: the node that ran it before, for the
    /// message when the process cannot be found.
    resumed_after: Option<String>,
}

impl<'a> LeafProcess<'a> {
    /// The process of step `plan_id`, its output to `sink`, its placement
    /// and image to `observer`; `start_events` are stored once it started.
    pub fn new(
        ctx: &'a StepContext,
        plan_id: &'a str,
        sink: Arc<dyn OutputSink>,
        observer: Arc<dyn StepObserver>,
        start_events: Box<dyn Fn() -> Vec<BuildEvent> + Send + Sync + 'a>,
    ) -> LeafProcess<'a> {
        let build = &ctx.build;
        let resume_from = match build.resume(plan_id) {
            Resume::Started(offset) => Some(offset),
            _ => None,
        };
        let mut process = StepProcess::new(build.runtime.as_ref(), sink, ctx.cancel.clone());
        process.observer = observer;
        process.handed_over = build.events.handed_over();
        process.resume_from = resume_from;
        process.on_start = Some(Box::new(move || {
            let record = StepRecord::Started { plan_id: plan_id.to_string() };
            build.events.write(start_events(), vec![record]);
        }));
        process.on_exit = Some(Box::new(move |handle| build.keep_until_recorded(plan_id, handle)));
        let resumed_after = resume_from.map(|_| build.previous_owner().unwrap_or("an earlier atc").to_string());
        LeafProcess { process, resumed_after }
    }

    pub async fn run(&self, spec: StepSpec) -> Result<StepOutcome, RuntimeError> {
        match (self.process.run(spec).await, &self.resumed_after) {
            (Err(RuntimeError::UnknownStep(_)), Some(node)) => Err(RuntimeError::Lost(format!(
                "its process ran under the atc node {node}, which stopped renewing its lease, and cannot be \
                 reached from here, so the step cannot be resumed"
            ))),
            (ended, _) => ended,
        }
    }
}

impl ScriptRunner for LeafProcess<'_> {
    fn run_script(&self, spec: StepSpec) -> BoxFuture<'_, Result<StepOutcome, RuntimeError>> {
        Box::pin(self.run(spec))
    }

    fn discard(&self, artifact: Artifact) -> BoxFuture<'_, ()> {
        self.process.discard(artifact)
    }
}
