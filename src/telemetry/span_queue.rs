//! Batch export of finished spans through a bounded queue. Ending a span
//! never waits: when the queue is full (the collector is slow or down) the
//! span is dropped and counted, and a rate-limited warning says so. One task
//! on the export runtime sends batches, each export bounded by a timeout; it
//! wakes per batch (or per schedule delay), never per span.
//!
//! The SDK's batch processor does the same but keeps its drop count to
//! itself; atc exposes it as `concourse_tracing_spans_dropped_total`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::mpsc::{self, Receiver, UnboundedReceiver, UnboundedSender};

use super::TelemetryError;
use super::rate_limited_warning::RateLimitedWarning;
use crate::metric::{DropReason, ExportFailed, SpansDropped, SpansQueued};

/// Sizes and delays, from the standard `OTEL_BSP_*` variables where set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
    pub schedule_delay: Duration,
    pub export_timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            schedule_delay: Duration::from_secs(5),
            export_timeout: Duration::from_secs(30),
        }
    }
}

impl QueueConfig {
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<QueueConfig, TelemetryError> {
        let number = |name: &'static str| -> Result<Option<u64>, TelemetryError> {
            env(name)
                .map(|v| match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(TelemetryError::env(name, format!("'{v}' is not a positive whole number"))),
                })
                .transpose()
        };
        let defaults = QueueConfig::default();
        let max_queue_size = number("OTEL_BSP_MAX_QUEUE_SIZE")?.map_or(defaults.max_queue_size, |n| n as usize);
        let max_export_batch_size = number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")?
            .map_or(defaults.max_export_batch_size, |n| n as usize)
            .min(max_queue_size);
        Ok(QueueConfig {
            max_queue_size,
            max_export_batch_size,
            schedule_delay: number("OTEL_BSP_SCHEDULE_DELAY")?.map_or(defaults.schedule_delay, Duration::from_millis),
            export_timeout: number("OTEL_BSP_EXPORT_TIMEOUT")?.map_or(defaults.export_timeout, Duration::from_millis),
        })
    }
}

static QUEUE_FULL: RateLimitedWarning =
    RateLimitedWarning::new("span export queue is full, dropping spans", Duration::from_secs(30));
static EXPORT_FAILED: RateLimitedWarning =
    RateLimitedWarning::new("cannot export spans, dropping them", Duration::from_secs(30));

enum Command {
    Flush(std::sync::mpsc::Sender<()>),
    Shutdown(std::sync::mpsc::Sender<()>),
}

/// The span processor: a bounded queue and its export task.
#[derive(Debug)]
pub struct SpanQueue {
    spans: mpsc::Sender<SpanData>,
    commands: UnboundedSender<Command>,
    shared: Arc<Shared>,
    max_export_batch_size: i64,
}

/// What both ends of the queue see.
#[derive(Debug, Default)]
struct Shared {
    queued: AtomicI64,
    /// Raised when a full batch waits: the exporter is not woken span by span.
    batch_ready: Notify,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Flush(_) => "Flush",
            Command::Shutdown(_) => "Shutdown",
        })
    }
}

impl SpanQueue {
    /// Starts the export task on `runtime`.
    pub fn start<E: SpanExporter + 'static>(exporter: E, config: QueueConfig, runtime: &Handle) -> SpanQueue {
        let (spans, receiver) = mpsc::channel(config.max_queue_size);
        let (commands, command_receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let worker = Worker { exporter, config, spans: receiver, commands: command_receiver, shared: shared.clone() };
        runtime.spawn(worker.run());
        SpanQueue { spans, commands, shared, max_export_batch_size: config.max_export_batch_size as i64 }
    }

    /// Exports everything queued now; waits at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> OTelSdkResult {
        self.command(Command::Flush, timeout)
    }

    fn command(&self, command: fn(std::sync::mpsc::Sender<()>) -> Command, timeout: Duration) -> OTelSdkResult {
        let (done, finished) = std::sync::mpsc::channel();
        self.commands.send(command(done)).map_err(|_| OTelSdkError::AlreadyShutdown)?;
        finished.recv_timeout(timeout).map_err(|_| OTelSdkError::Timeout(timeout))
    }
}

impl SpanProcessor for SpanQueue {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        // Recorded but unsampled spans are for local processors, not export.
        if !span.span_context.is_sampled() {
            return;
        }
        match self.spans.try_send(span) {
            Ok(()) => {
                let count = self.shared.queued.fetch_add(1, Ordering::Relaxed) + 1;
                SpansQueued { count }.emit();
                if count == self.max_export_batch_size {
                    self.shared.batch_ready.notify_one();
                }
            }
            Err(TrySendError::Full(_)) => {
                SpansDropped { reason: DropReason::QueueFull, count: 1 }.emit();
                QUEUE_FULL.warn(&format_args!("{} spans are waiting for the collector", self.spans.max_capacity()));
            }
            Err(TrySendError::Closed(_)) => SpansDropped { reason: DropReason::Shutdown, count: 1 }.emit(),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush(Duration::from_secs(5))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.command(Command::Shutdown, timeout)
    }
}

struct Worker<E> {
    exporter: E,
    config: QueueConfig,
    spans: Receiver<SpanData>,
    commands: UnboundedReceiver<Command>,
    shared: Arc<Shared>,
}

impl<E: SpanExporter> Worker<E> {
    /// Wakes for a full batch, the schedule delay, or a command; then
    /// exports everything queued. Never waits on the queue itself, so
    /// ending a span wakes no thread.
    async fn run(mut self) {
        loop {
            let command = tokio::select! {
                biased;
                command = self.commands.recv() => Some(command),
                () = self.shared.batch_ready.notified() => None,
                () = tokio::time::sleep(self.config.schedule_delay) => None,
            };
            let open = self.export_queued().await;
            match command {
                None if open => {}
                // The processor is gone and its queue is empty.
                None | Some(None) => return,
                Some(Some(Command::Flush(done))) => {
                    let _ = done.send(());
                }
                Some(Some(Command::Shutdown(done))) => {
                    let _ = self.exporter.shutdown();
                    let _ = done.send(());
                    return;
                }
            }
        }
    }

    /// Exports the queued spans batch by batch; false once the queue is closed and empty.
    async fn export_queued(&mut self) -> bool {
        let max = self.config.max_export_batch_size;
        loop {
            let mut batch = Vec::with_capacity(max);
            let open = loop {
                if batch.len() == max {
                    break true;
                }
                match self.spans.try_recv() {
                    Ok(span) => batch.push(span),
                    Err(TryRecvError::Empty) => break true,
                    Err(TryRecvError::Disconnected) => break false,
                }
            };
            let full = batch.len() == max;
            self.took(batch.len());
            self.export(batch).await;
            if !full {
                return open;
            }
        }
    }

    fn took(&self, count: usize) {
        if count == 0 {
            return;
        }
        let left = self.shared.queued.fetch_sub(count as i64, Ordering::Relaxed) - count as i64;
        SpansQueued { count: left.max(0) }.emit();
    }

    async fn export(&mut self, spans: Vec<SpanData>) {
        if spans.is_empty() {
            return;
        }
        let count = spans.len() as u64;
        let failure = match tokio::time::timeout(self.config.export_timeout, self.exporter.export(spans)).await {
            Ok(Ok(())) => return,
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {:?}", self.config.export_timeout),
        };
        SpansDropped { reason: DropReason::ExportFailed, count }.emit();
        ExportFailed { signal: "traces" }.emit();
        EXPORT_FAILED.warn(&failure);
    }
}
