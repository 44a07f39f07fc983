//! Running one step's process through the runtime's lifecycle: start it,
//! attach to follow its output into the step's log until it exits, and stop
//! it (which removes it) once its outcome is in hand, or early when the step
//! is cancelled (abort, timeout).

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::resource::ScriptRunner;
use crate::runtime::{Artifact, OutputOffset, OutputSink, Runtime, RuntimeError, StepOutcome, StepSpec, TraceContext};
use crate::telemetry::propagation;

/// How long a stopped step's processes get between SIGTERM and SIGKILL.
pub const STOP_GRACE_PERIOD: Duration = Duration::from_secs(10);

/// One step's process and where its output goes.
pub struct StepProcess<'a> {
    pub runtime: &'a dyn Runtime,
    pub sink: Arc<dyn OutputSink>,
    pub cancel: CancellationToken,
    /// Between a polite and a forced stop when cancelled.
    pub grace: Duration,
}

impl StepProcess<'_> {
    /// Runs `spec` to its exit; [`RuntimeError::Interrupted`] when the step
    /// is cancelled first (its processes are then stopped).
    pub async fn run(&self, spec: StepSpec) -> Result<StepOutcome, RuntimeError> {
        if self.cancel.is_cancelled() {
            return Err(RuntimeError::Interrupted);
        }
        let handle = self.runtime.start(spec).await?;
        let attached = self.runtime.attach(&handle, self.sink.clone(), OutputOffset::default());
        let (outcome, grace) = tokio::select! {
            outcome = attached => (outcome, Duration::ZERO),
            _ = self.cancel.cancelled() => (Err(RuntimeError::Interrupted), self.grace),
        };
        if let Err(err) = self.runtime.stop(&handle, grace).await {
            tracing::warn!(step = %handle, error = %err, "cannot stop a step");
        }
        outcome
    }
}

impl ScriptRunner for StepProcess<'_> {
    fn run_script(&self, spec: StepSpec) -> BoxFuture<'_, Result<StepOutcome, RuntimeError>> {
        self.run(spec).boxed()
    }

    fn discard(&self, artifact: Artifact) -> BoxFuture<'_, ()> {
        async move {
            if let Err(err) = self.runtime.release(vec![artifact]).await {
                tracing::warn!(error = %err, "cannot release the artifact of a refused get");
            }
        }
        .boxed()
    }
}

/// The trace context a step's processes continue: the step's span.
pub fn trace_context(cx: &opentelemetry::Context) -> Option<TraceContext> {
    let carrier = propagation::environment_for(cx);
    let value = |key: &str| carrier.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    Some(TraceContext { traceparent: value("TRACEPARENT")?, tracestate: value("TRACESTATE") })
}
