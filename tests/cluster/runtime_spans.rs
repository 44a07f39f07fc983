//! The trace of a step on the Kubernetes runtime: `k8s.pod` under the step
//! span with its stages (scheduling, image pulls, the fetch-inputs init
//! container, the run) placed at the times Kubernetes recorded, phase
//! events, and a CLIENT span per API request; a fault marks the span that
//! failed.

use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context as _, ensure};
use atc::runtime::{RuntimeError, TraceContext};
use opentelemetry::trace::{SpanKind, Status, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::runtime::support::{RecordingSink, Shell, run};
use crate::runtime::{image, shared};

/// Keeps every span it is given.
#[derive(Debug, Clone, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

/// The spans atc has ended so far in `trace`, once a collecting provider
/// is the global one.
fn ended_in(trace: TraceId) -> Vec<SpanData> {
    static COLLECTED: OnceLock<Collected> = OnceLock::new();
    let collected = COLLECTED.get_or_init(|| {
        let collected = Collected::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(collected.clone()).build();
        opentelemetry::global::set_tracer_provider(provider);
        collected
    });
    collected.0.lock().unwrap().iter().filter(|span| span.span_context.trace_id() == trace).cloned().collect()
}

/// Runs `script` in `repository` under a new step span; its trace id and the result.
async fn traced_step(
    cluster: &Cluster,
    repository: &str,
    script: &str,
) -> anyhow::Result<(TraceId, Result<i32, RuntimeError>)> {
    let shared = shared(cluster).await?;
    ended_in(TraceId::INVALID);
    let trace: [u8; 16] = rand::random();
    let trace_hex: String = trace.iter().map(|b| format!("{b:02x}")).collect();
    let mut step = Shell { image: Some(image(repository)) }.step(script);
    step.trace = Some(TraceContext { traceparent: format!("00-{trace_hex}-00f067aa0ba902b7-01"), tracestate: None });
    let result = run(&shared.runtime, step, RecordingSink::new(), CancellationToken::new()).await;
    Ok((TraceId::from_bytes(trace), result.map(|outcome| outcome.exit_code)))
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> anyhow::Result<&'a SpanData> {
    let names: Vec<&str> = spans.iter().map(|span| span.name.as_ref()).collect();
    spans.iter().find(|span| span.name == name).with_context(|| format!("no span {name} among {names:?}"))
}

pub async fn a_step_pod_traces_where_its_time_went(cluster: &Cluster) -> anyhow::Result<()> {
    let (trace, result) = traced_step(cluster, "busybox", "echo hi").await?;
    ensure!(result? == 0);
    let spans = ended_in(trace);
    let pod = spans.iter().find(|span| span.name.starts_with("k8s.pod test-")).context("no k8s.pod span")?;
    let events: Vec<&str> = pod.events.iter().map(|event| event.name.as_ref()).collect();
    ensure!(events == ["pod.phase.pending", "pod.phase.running"], "events {events:?}");
    ensure!(pod.attributes.iter().any(|a| a.key.as_str() == "k8s.node.name"), "{:?}", pod.attributes);
    for stage in ["k8s.pod.schedule", "k8s.image.pull main", "k8s.init_container fetch-inputs", "k8s.pod.run"] {
        let span = named(&spans, stage)?;
        ensure!(span.parent_span_id == pod.span_context.span_id(), "{stage} is not under k8s.pod");
        ensure!(span.end_time >= span.start_time, "{stage} ends before it starts");
    }
    let create = named(&spans, "create pods")?;
    ensure!(create.span_kind == SpanKind::Client && create.parent_span_id == pod.span_context.span_id());
    named(&spans, "exec pods/exec")?;
    Ok(())
}

pub async fn an_oom_kill_marks_the_pods_run_as_failed(cluster: &Cluster) -> anyhow::Result<()> {
    let (trace, result) = traced_step(cluster, "atc.test/oom", "sleep 30").await?;
    ensure!(matches!(result, Err(RuntimeError::OutOfMemory { .. })), "{result:?}");
    let spans = ended_in(trace);
    let pod = spans.iter().find(|span| span.name.starts_with("k8s.pod test-")).context("no k8s.pod span")?;
    ensure!(matches!(pod.status, Status::Error { .. }), "{:?}", pod.status);
    let run = named(&spans, "k8s.pod.run")?;
    let reason = run.attributes.iter().find(|a| a.key.as_str() == "k8s.container.status.last_terminated_reason");
    ensure!(reason.is_some_and(|a| a.value.as_str() == "OOMKilled"), "{:?}", run.attributes);
    Ok(())
}
