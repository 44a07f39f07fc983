//! Every span atc makes, one module per family, each spelling its span
//! names, attribute values and events once (the keys are in `semconv`), as
//! observability.md lists them. Call sites say what happened in plain values
//! (`StepSpan { .. }.start(parent)`, `DbOperation::CreateBuild.start(system)`),
//! never a name or a key; the domain modules turn their own types into those
//! values. Only this module and the HTTP layer call the tracer: a test fails
//! when anything outside `telemetry` does.

mod build;
mod component;
#[cfg(test)]
mod confinement;
mod credentials;
mod database;
mod pod;
mod process;
mod step;
#[cfg(test)]
pub(crate) mod testing;

use opentelemetry::global::{self, BoxedTracer};

pub use build::{BuildEnd, BuildSpan, CheckedResource, end_build};
pub use component::{InputResolution, LidarScan, ReaperPass, SchedulingPass};
pub use credentials::{BackendRequest, BackendRequestSpan, CredsLookup, CredsLookupSpan, Rpc};
pub use database::{DbOperation, DbSpan, DbSystem};
pub use pod::{K8sRequest, K8sRequestSpan, PodInterval, PodSpan, PodStage, StepPod};
pub use process::{ProcessSpan, RuntimeProcess};
pub use step::{HookSpan, StepEnd, StepSpan, end_hook, end_step, step_image_ready, step_placed, step_starting};

/// The instrumentation scope of atc's own spans.
pub const TRACER_NAME: &str = "atc";

/// The tracer of atc's own spans, from the global provider.
pub(super) fn tracer() -> BoxedTracer {
    global::tracer(TRACER_NAME)
}

/// How a build or a step ended, as `cicd.pipeline.result` and
/// `cicd.pipeline.task.run.result` say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    Success,
    Failure,
    Error,
    Cancellation,
    Timeout,
}

impl RunResult {
    /// The `cicd.pipeline.result` (or `...task.run.result`) value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Success => "success",
            RunResult::Failure => "failure",
            RunResult::Error => "error",
            RunResult::Cancellation => "cancellation",
            RunResult::Timeout => "timeout",
        }
    }
}
