//! One delegate per leaf step, through which everything the step reports
//! about itself passes: that it initializes, where the runtime placed it and
//! the image it runs in, that its process starts, its output, and how it
//! ended. Each report becomes, together, the build event, the span event,
//! the metric and the log line it stands for, so no step emits one of them
//! without the others, and step code says what happened, not how it is
//! recorded.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;

use super::leaf::LeafProcess;
use super::{Outcome, StepContext};
use crate::engine::event::{BuildEvent, Origin};
use crate::engine::span_facts;
use crate::engine::state::BuildState;
use crate::engine::step_log::StepLog;
use crate::engine::waiting::Waiting;
use crate::metric;
use crate::runtime::StepObserver;
use crate::telemetry::spans;

pub struct StepDelegate {
    build: Arc<BuildState>,
    plan_id: String,
    step_type: &'static str,
    /// The step's span, or its build's for a step without one (a check's
    /// span is its build's).
    trace: Context,
    own_span: bool,
    began: Instant,
    /// Counted as waiting from initializing until its process starts.
    waiting: Mutex<Option<Waiting>>,
    placement: Arc<Placement>,
}

/// What the runtime reported of where the step's process runs.
struct Placement {
    plan_id: String,
    trace: Context,
    worker: Mutex<Option<String>>,
}

impl StepObserver for Placement {
    fn placed(&self, worker: &str) {
        *self.worker.lock().unwrap_or_else(|p| p.into_inner()) = Some(worker.to_string());
        spans::step_placed(&self.trace, worker);
        tracing::debug!(step = %self.plan_id, worker, "step placed");
    }

    fn image_ready(&self, image: &str) {
        spans::step_image_ready(&self.trace, image);
        tracing::debug!(step = %self.plan_id, image, "step image ready");
    }
}

impl StepDelegate {
    /// The delegate of step `plan_id` of kind `step_type`, reporting to the
    /// span `trace`; `own_span` when that span is the step's own, to be
    /// ended with the step. The step counts as initializing from now.
    pub fn new(
        build: Arc<BuildState>,
        plan_id: &str,
        step_type: &'static str,
        trace: Context,
        own_span: bool,
    ) -> StepDelegate {
        let placement =
            Arc::new(Placement { plan_id: plan_id.to_string(), trace: trace.clone(), worker: Mutex::new(None) });
        StepDelegate {
            build,
            plan_id: plan_id.to_string(),
            step_type,
            trace,
            own_span,
            began: Instant::now(),
            // Handing an artifact in or out waits for no runtime.
            waiting: Mutex::new(
                (!matches!(step_type, "artifact_input" | "artifact_output")).then(|| Waiting::begin(step_type)),
            ),
            placement,
        }
    }

    pub fn plan_id(&self) -> &str {
        &self.plan_id
    }

    fn origin(&self) -> Origin {
        Origin::step(&self.plan_id)
    }

    /// The step's opening event (`initialize-*`), emitted once even in a
    /// build taken up again.
    pub fn initializing(&self, event: BuildEvent) {
        self.build.announce(&self.plan_id, event);
    }

    /// Where the step's output and atc's notices about it go, as `log`
    /// events (held-back text is written when the log is dropped).
    pub fn log(&self) -> Arc<StepLog> {
        StepLog::new(self.build.clone(), &self.plan_id)
    }

    /// The step's process, about to start: the step waits no more. Once it
    /// runs, `selected-worker` (when the runtime placed it) and `start` are
    /// stored with the record that it started.
    pub fn process<'a>(&'a self, ctx: &'a StepContext, start: Option<BuildEvent>) -> LeafProcess<'a> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).take();
        spans::step_starting(&self.trace);
        let placement = self.placement.clone();
        let origin = self.origin();
        let start_events = move || {
            let worker = placement.worker.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let selected = worker.map(|worker| BuildEvent::SelectedWorker {
                origin: origin.clone(),
                worker,
                time: crate::db::now(),
            });
            selected.into_iter().chain(start.clone()).collect()
        };
        LeafProcess::new(ctx, &self.plan_id, self.log(), self.placement.clone(), Box::new(start_events))
    }

    /// The step ran to its end: its closing event (`finish-*`), and its
    /// process's exit status when it ran one.
    pub fn finished(&self, event: BuildEvent, exit_status: Option<i32>) {
        if let Some(code) = exit_status {
            self.build.record_exit_status(&self.plan_id, code);
        }
        self.build.emit_closing(&self.plan_id, event);
    }

    /// The step could not run as configured, or the system failed it.
    pub fn errored(&self, message: String) -> Outcome {
        tracing::info!(build = self.build.info.id, step = %self.plan_id, error = %self.build.redact(&message), "step errored");
        self.build.step_error(&self.plan_id, &message);
        Outcome::Errored(message)
    }

    /// The step ran and failed, for `message` (shown in its log).
    pub fn failed(&self, message: &str) -> Outcome {
        self.build.step_error(&self.plan_id, message);
        Outcome::Failed
    }

    /// The step ended with `outcome` (already redacted): its duration
    /// metric and span end, when the span is its own.
    pub fn ended(self, outcome: &Outcome) {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).take();
        if !self.own_span {
            return;
        }
        let span = self.trace.span().span_context().clone();
        metric::StepFinished { step_type: self.step_type, duration: self.began.elapsed(), span: &span }.emit();
        let exit_status = self.build.exit_status(&self.plan_id);
        spans::end_step(&self.trace, span_facts::step_end(outcome, exit_status, self.build.timed_out()));
    }
}
