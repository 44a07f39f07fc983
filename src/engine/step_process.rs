//! Running one step's process through the runtime's lifecycle: start it
//! (or, in a build taken up again, find the one started before), attach to
//! follow its output into the step's log until it exits, and stop it, which
//! removes it: early when the step is cancelled (abort, timeout), else once
//! its outcome is recorded; never once another node took the build over,
//! which attaches to it in turn.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::resource::ScriptRunner;
use crate::runtime::{
    Artifact, OutputOffset, OutputSink, Runtime, RuntimeError, StepHandle, StepObserver, StepOutcome, StepSpec,
    TraceContext,
};
use crate::telemetry::propagation;

/// How long a stopped step's processes get between SIGTERM and SIGKILL.
pub const STOP_GRACE_PERIOD: Duration = Duration::from_secs(10);

/// One step's process and where its output goes.
pub struct StepProcess<'a> {
    pub runtime: &'a dyn Runtime,
    pub sink: Arc<dyn OutputSink>,
    /// Told where the process was placed and what image it runs in.
    pub observer: Arc<dyn StepObserver>,
    pub cancel: CancellationToken,
    /// Cancelled when another node took the build over: the process is then
    /// left running for that node, which attaches to it where it was.
    pub handed_over: CancellationToken,
    /// Between a polite and a forced stop when cancelled.
    pub grace: Duration,
    /// The step had started before its build was taken up again: attach to
    /// its process from this offset instead of starting one.
    pub resume_from: Option<OutputOffset>,
    /// Called once a process was started (not when resumed): the step
    /// announces itself then, so that a crash before never leaves an
    /// announced step without a process.
    pub on_start: Option<Box<dyn Fn() + Send + Sync + 'a>>,
    /// Receives the handle of a process that exited, to stop once its
    /// outcome is recorded; without it, it is stopped at once.
    pub on_exit: Option<Box<dyn Fn(StepHandle) + Send + Sync + 'a>>,
}

impl<'a> StepProcess<'a> {
    /// A process of a step that starts now, stopped as soon as it exits.
    pub fn new(runtime: &'a dyn Runtime, sink: Arc<dyn OutputSink>, cancel: CancellationToken) -> StepProcess<'a> {
        StepProcess {
            runtime,
            sink,
            observer: Arc::new(Unobserved),
            cancel,
            handed_over: CancellationToken::new(),
            grace: STOP_GRACE_PERIOD,
            resume_from: None,
            on_start: None,
            on_exit: None,
        }
    }

    /// Runs `spec` to its exit; [`RuntimeError::Interrupted`] when the step
    /// is cancelled first (its processes are then stopped).
    pub async fn run(&self, spec: StepSpec) -> Result<StepOutcome, RuntimeError> {
        if self.cancel.is_cancelled() {
            return Err(RuntimeError::Interrupted);
        }
        let handle = spec.handle.clone();
        let since = match self.resume_from {
            Some(offset) => offset,
            None => {
                match self.runtime.start(spec, self.observer.clone()).await {
                    // Started just before a crash, never announced: follow it from the start.
                    Ok(_) | Err(RuntimeError::AlreadyStarted(_)) => {}
                    Err(err) => return Err(err),
                }
                if let Some(on_start) = &self.on_start {
                    on_start();
                }
                OutputOffset::default()
            }
        };
        let attached = self.runtime.attach(&handle, self.sink.clone(), since);
        let ended = tokio::select! {
            ended = attached => ended,
            _ = self.cancel.cancelled() => Err(RuntimeError::Interrupted),
        };
        match (&ended, &self.on_exit) {
            _ if self.handed_over.is_cancelled() => {}
            (Ok(_), Some(on_exit)) => on_exit(handle),
            (Ok(_), None) => self.stop(&handle, Duration::ZERO).await,
            (Err(RuntimeError::UnknownStep(_)), _) => {}
            (Err(_), _) => self.stop(&handle, self.grace).await,
        }
        ended
    }

    async fn stop(&self, handle: &StepHandle, grace: Duration) {
        if let Err(err) = self.runtime.stop(handle, grace).await {
            tracing::warn!(step = %handle, error = %err, "cannot stop a step");
        }
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

/// For a process whose placement and image nobody reports.
pub struct Unobserved;

impl StepObserver for Unobserved {
    fn placed(&self, _worker: &str) {}
    fn image_ready(&self, _image: &str) {}
}

/// The trace context a step's processes continue: the step's span.
pub fn trace_context(cx: &opentelemetry::Context) -> Option<TraceContext> {
    let carrier = propagation::environment_for(cx);
    let value = |key: &str| carrier.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    Some(TraceContext { traceparent: value("TRACEPARENT")?, tracestate: value("TRACESTATE") })
}
