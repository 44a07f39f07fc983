//! The trace of a step on the Kubernetes runtime: `k8s.pod` under the step
//! span with its stages (the wait for a build's claim, scheduling, image
//! pulls, the fetch-inputs init container, the run) placed at the times
//! Kubernetes recorded, phase events, and a CLIENT span per API request; a
//! fault marks the span that failed.

use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context as _, ensure};
use atc::runtime::{Runtime, RuntimeError, TraceContext};
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
pub fn ended_in(trace: TraceId) -> Vec<SpanData> {
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
    traced_step_on(&shared(cluster).await?.runtime, repository, script, None).await
}

/// Runs `script` in `repository` as a step of `build`, if any.
async fn traced_step_on(
    runtime: &dyn atc::runtime::Runtime,
    repository: &str,
    script: &str,
    build: Option<i64>,
) -> anyhow::Result<(TraceId, Result<i32, RuntimeError>)> {
    ended_in(TraceId::INVALID);
    let trace: [u8; 16] = rand::random();
    let trace_hex: String = trace.iter().map(|b| format!("{b:02x}")).collect();
    let mut step = Shell { image: Some(image(repository)) }.step(script);
    step.trace = Some(TraceContext { traceparent: format!("00-{trace_hex}-00f067aa0ba902b7-01"), tracestate: None });
    step.metadata.build_id = build;
    let result = run(runtime, step, RecordingSink::new(), CancellationToken::new()).await;
    Ok((TraceId::from_bytes(trace), result.map(|outcome| outcome.exit_code)))
}

pub fn named<'a>(spans: &'a [SpanData], name: &str) -> anyhow::Result<&'a SpanData> {
    let names: Vec<&str> = spans.iter().map(|span| span.name.as_ref()).collect();
    spans.iter().find(|span| span.name == name).with_context(|| format!("no span {name} among {names:?}"))
}

/// The whole tree, for a step outside a build (on the shared claim) and
/// for the first step of a build (which waits for the build's claim).
pub async fn a_step_pod_traces_where_its_time_went(cluster: &Cluster) -> anyhow::Result<()> {
    let runtime = &shared(cluster).await?.runtime;
    for build in [None, Some(crate::workspaces::unused_build_id())] {
        let (trace, result) = traced_step_on(runtime, "busybox", "echo hi", build).await?;
        ensure!(result? == 0);
        let spans = ended_in(trace);
        let pod = spans.iter().find(|span| span.name.starts_with("k8s.pod test-")).context("no k8s.pod span")?;
        let events: Vec<&str> = pod.events.iter().map(|event| event.name.as_ref()).collect();
        ensure!(events == ["pod.phase.pending", "pod.phase.running"], "events {events:?}");
        ensure!(pod.attributes.iter().any(|a| a.key.as_str() == "k8s.node.name"), "{:?}", pod.attributes);
        let mut stages =
            vec!["k8s.pod.schedule", "k8s.image.pull main", "k8s.init_container fetch-inputs", "k8s.pod.run"];
        if build.is_some() {
            stages.push("k8s.pvc.bind");
        } else {
            ensure!(spans.iter().all(|span| span.name != "k8s.pvc.bind"), "a step on the shared claim waited for one");
        }
        for stage in stages {
            let span = named(&spans, stage)?;
            ensure!(span.parent_span_id == pod.span_context.span_id(), "{stage} is not under k8s.pod");
            ensure!(span.end_time >= span.start_time, "{stage} ends before it starts");
        }
        if let Some(build) = build {
            let bind = named(&spans, "k8s.pvc.bind")?;
            let claim = bind.attributes.iter().find(|a| a.key.as_str() == "k8s.persistentvolumeclaim.name");
            ensure!(claim.is_some_and(|a| a.value.as_str() == format!("atc-build-{build}")), "{:?}", bind.attributes);
            ensure!(bind.status == Status::Unset, "{:?}", bind.status);
            runtime.remove_build_storage(build).await?;
        }
        let create = named(&spans, "create pods")?;
        ensure!(create.span_kind == SpanKind::Client && create.parent_span_id == pod.span_context.span_id());
        named(&spans, "exec pods/exec")?;
    }
    Ok(())
}

/// A build's claim no volume is provisioned for: the step errors at the
/// scheduling timeout with what Kubernetes said, its bind span failed.
pub async fn an_unbound_claim_marks_its_bind_as_failed(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let mut options = shared.options.clone();
    options.storage_class = Some("atc-test-no-such-class".into());
    options.pod_scheduling_timeout = std::time::Duration::from_secs(3);
    let unbound = atc::runtime::k8s::K8sRuntime::new(shared.client.clone(), options).await?;
    let build = crate::workspaces::unused_build_id();
    let (trace, result) = traced_step_on(&unbound, "busybox", "true", Some(build)).await?;
    unbound.remove_build_storage(build).await?;
    let Err(err @ RuntimeError::TimedOut(_)) = &result else { anyhow::bail!("{result:?}") };
    let message = err.to_string();
    ensure!(message.contains(&format!("claim atc-build-{build} was not bound")), "{message}");
    // Why, as the volume controller said it.
    ensure!(message.contains("ProvisioningFailed") && message.contains("atc-test-no-such-class"), "{message}");
    let (spans, _) = failed_pod(trace, "timeout")?;
    let bind = named(&spans, "k8s.pvc.bind")?;
    ensure!(matches!(bind.status, Status::Error { .. }), "{:?}", bind.status);
    ensure!(spans.iter().all(|span| span.name != "k8s.pod.schedule"), "a step pod was made");
    Ok(())
}

pub async fn an_oom_kill_marks_the_pods_run_as_failed(cluster: &Cluster) -> anyhow::Result<()> {
    let (trace, result) = traced_step(cluster, "atc.test/oom", "sleep 30").await?;
    ensure!(matches!(result, Err(RuntimeError::OutOfMemory { .. })), "{result:?}");
    let (spans, _) = failed_pod(trace, "OOMKilled")?;
    let run = named(&spans, "k8s.pod.run")?;
    let reason = run.attributes.iter().find(|a| a.key.as_str() == "k8s.container.status.last_terminated_reason");
    ensure!(reason.is_some_and(|a| a.value.as_str() == "OOMKilled"), "{:?}", run.attributes);
    Ok(())
}

/// The `k8s.pod` span of `trace`, which must have failed with `error_type`.
fn failed_pod(trace: TraceId, error_type: &str) -> anyhow::Result<(Vec<SpanData>, SpanData)> {
    let spans = ended_in(trace);
    let pod = spans.iter().find(|span| span.name.starts_with("k8s.pod test-")).context("no k8s.pod span")?.clone();
    ensure!(matches!(pod.status, Status::Error { .. }), "{:?}", pod.status);
    let error = pod.attributes.iter().find(|a| a.key.as_str() == "error.type").map(|a| a.value.as_str().to_string());
    ensure!(error.as_deref() == Some(error_type), "error.type {error:?} instead of {error_type}");
    Ok((spans, pod))
}

pub async fn an_unpullable_image_marks_its_pull_as_failed(cluster: &Cluster) -> anyhow::Result<()> {
    let (trace, result) = traced_step(cluster, "atc.test/broken-pull", "true").await?;
    ensure!(matches!(result, Err(RuntimeError::ImageUnavailable { .. })), "{result:?}");
    let (spans, _) = failed_pod(trace, "ImagePullBackOff")?;
    let pull = named(&spans, "k8s.image.pull main")?;
    ensure!(matches!(pull.status, Status::Error { .. }), "{:?}", pull.status);
    ensure!(spans.iter().all(|span| span.name != "k8s.pod.run"), "a pod that never ran has a run span");
    Ok(())
}

pub async fn an_eviction_ends_the_pod_span_as_lost(cluster: &Cluster) -> anyhow::Result<()> {
    let (trace, result) = traced_step(cluster, "atc.test/evicted", "sleep 30").await?;
    ensure!(matches!(result, Err(RuntimeError::Lost(_))), "{result:?}");
    let (_, pod) = failed_pod(trace, "lost")?;
    let phase = pod.attributes.iter().find(|a| a.key.as_str() == "k8s.pod.status.phase");
    ensure!(phase.is_some_and(|a| a.value.as_str() == "Failed"), "{:?}", pod.attributes);
    Ok(())
}

pub async fn an_unschedulable_pod_has_no_schedule_span(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let mut options = shared.options.clone();
    options.node_selector.insert("atc.test/no-such-label".into(), "anywhere".into());
    options.pod_scheduling_timeout = std::time::Duration::from_secs(2);
    let picky = atc::runtime::k8s::K8sRuntime::new(shared.client.clone(), options).await?;
    let (trace, result) = traced_step_on(&picky, "busybox", "true", None).await?;
    ensure!(matches!(result, Err(RuntimeError::TimedOut(_))), "{result:?}");
    let (spans, _) = failed_pod(trace, "timeout")?;
    ensure!(spans.iter().all(|span| span.name != "k8s.pod.schedule"), "an unscheduled pod has a schedule span");
    Ok(())
}
