//! Events worth counting. Each is a small struct whose `emit()` records its
//! Prometheus series and its OTel instrument together; call sites say what
//! happened (`BuildFinished { .. }.emit()`), never which series it feeds.

use std::time::{Duration, SystemTime};

use opentelemetry::KeyValue;
use opentelemetry::trace::SpanContext;

use super::exemplar::TraceExemplar;
use super::series::{
    CredsLookupLabels, FinishedBuildLabels, HttpLabels, JobLabels, LockLabels, PoolLabels, ReasonLabels, SignalLabels,
    StatusLabels, StepLabels,
};
use super::{otel, prometheus};
use crate::telemetry::semconv;
use crate::telemetry::spans::RunResult;

/// A request got its response (recorded by the HTTP middleware).
pub struct HttpRequestServed<'a> {
    pub method: &'a str,
    /// The route template (`/api/v1/teams/{team_name}`); `None` when no route matched.
    pub route: Option<&'a str>,
    pub status: u16,
    pub duration: Duration,
    /// The request's span; its trace becomes the exemplar when sampled.
    pub span: &'a SpanContext,
}

impl HttpRequestServed<'_> {
    pub fn emit(self) {
        let seconds = self.duration.as_secs_f64();
        let labels = HttpLabels {
            method: self.method.to_string(),
            route: self.route.unwrap_or_default().to_string(),
            status: self.status,
        };
        prometheus().http_responses_duration.get_or_create(&labels).observe(
            seconds,
            TraceExemplar::of(self.span),
            Some(SystemTime::now()),
        );
        let mut attributes = Vec::with_capacity(5);
        attributes.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, self.method.to_string()));
        attributes.push(KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, i64::from(self.status)));
        attributes.push(KeyValue::new(semconv::URL_SCHEME, "http"));
        if let Some(route) = self.route {
            attributes.push(KeyValue::new(semconv::HTTP_ROUTE, route.to_string()));
        }
        if self.status >= 500 {
            attributes.push(KeyValue::new(semconv::ERROR_TYPE, self.status.to_string()));
        }
        otel().http_server_request_duration.record(seconds, &attributes);
    }
}

/// Which job a build belongs to.
#[derive(Debug, Clone, Copy)]
pub struct JobRef<'a> {
    pub team: &'a str,
    pub pipeline: &'a str,
    pub job: &'a str,
}

impl JobRef<'_> {
    fn cicd_pipeline_name(&self) -> KeyValue {
        KeyValue::new(semconv::CICD_PIPELINE_NAME, format!("{}/{}", self.pipeline, self.job))
    }
}

/// A build started executing.
pub struct BuildStarted<'a> {
    pub job: JobRef<'a>,
}

impl BuildStarted<'_> {
    pub fn emit(self) {
        prometheus().builds_started.inc();
        prometheus().builds_running.inc();
        let attributes = [self.job.cicd_pipeline_name(), KeyValue::new(semconv::CICD_PIPELINE_RUN_STATE, "executing")];
        otel().pipeline_run_active.add(1, &attributes);
    }
}

/// A build finished (after [`BuildStarted`]).
pub struct BuildFinished<'a> {
    pub job: JobRef<'a>,
    /// Concourse's final status (`succeeded`, `failed`, `errored`,
    /// `aborted`): the `status` label of Concourse's series.
    pub status: &'a str,
    /// The CI/CD result: the same the build's span reports.
    pub result: RunResult,
    pub duration: Duration,
    /// The build's span, for the exemplar.
    pub span: &'a SpanContext,
}

impl BuildFinished<'_> {
    pub fn emit(self) {
        let p = prometheus();
        let JobRef { team, pipeline, job } = self.job;
        let labels = |status: &str| FinishedBuildLabels {
            team: team.into(),
            pipeline: pipeline.into(),
            job: job.into(),
            status: status.into(),
        };
        p.builds_finished.get_or_create(&labels(self.status)).inc();
        p.builds_running.dec();
        let job_labels = JobLabels { team: team.into(), pipeline: pipeline.into(), job: job.into() };
        p.builds_duration.get_or_create(&job_labels).observe(
            self.duration.as_secs_f64(),
            TraceExemplar::of(self.span),
            Some(SystemTime::now()),
        );

        let name = self.job.cicd_pipeline_name();
        let o = otel();
        o.pipeline_run_active.add(-1, &[name.clone(), KeyValue::new(semconv::CICD_PIPELINE_RUN_STATE, "executing")]);
        o.pipeline_run_duration.record(
            self.duration.as_secs_f64(),
            &[
                name.clone(),
                KeyValue::new(semconv::CICD_PIPELINE_RUN_STATE, "executing"),
                KeyValue::new(semconv::CICD_PIPELINE_RESULT, self.result.as_str()),
            ],
        );
        if self.result == RunResult::Error {
            o.pipeline_run_errors.add(1, &[name, KeyValue::new(semconv::ERROR_TYPE, "errored")]);
        }
    }
}

/// A step (get, put, task, ...) finished.
pub struct StepFinished<'a> {
    pub step_type: &'a str,
    pub duration: Duration,
    /// The step's span, for the exemplar.
    pub span: &'a SpanContext,
}

impl StepFinished<'_> {
    pub fn emit(self) {
        let seconds = self.duration.as_secs_f64();
        prometheus().steps_duration.get_or_create(&StepLabels { r#type: self.step_type.into() }).observe(
            seconds,
            TraceExemplar::of(self.span),
            Some(SystemTime::now()),
        );
        otel()
            .step_duration
            .record(seconds, &[KeyValue::new(semconv::CONCOURSE_STEP_TYPE, self.step_type.to_string())]);
    }
}

/// How many steps of one type wait for a runtime to take them.
pub struct StepsWaiting<'a> {
    pub step_type: &'a str,
    pub count: i64,
}

impl StepsWaiting<'_> {
    pub fn emit(self) {
        prometheus().steps_waiting.get_or_create(&StepLabels { r#type: self.step_type.into() }).set(self.count);
    }
}

/// A step's pod got its main container running.
pub struct PodStarted<'a> {
    pub startup: Duration,
    /// The pod's span, for the exemplar.
    pub span: &'a SpanContext,
}

impl PodStarted<'_> {
    pub fn emit(self) {
        let seconds = self.startup.as_secs_f64();
        prometheus().k8s_pod_startup_duration.observe(seconds, TraceExemplar::of(self.span), Some(SystemTime::now()));
        otel().k8s_pod_startup_duration.record(seconds, &[]);
    }
}

/// Lidar started checking a resource.
pub struct CheckStarted;

impl CheckStarted {
    pub fn emit(self) {
        prometheus().lidar_checks_started.inc();
    }
}

/// A resource check finished; `status` is Concourse's (`succeeded`, `errored`, ...).
pub struct CheckFinished<'a> {
    pub status: &'a str,
}

impl CheckFinished<'_> {
    pub fn emit(self) {
        prometheus().lidar_checks_finished.get_or_create(&StatusLabels { status: self.status.into() }).inc();
    }
}

/// The scheduler scheduled a job.
pub struct JobScheduled;

impl JobScheduled {
    pub fn emit(self) {
        prometheus().jobs_scheduled.inc();
    }
}

/// A credential manager was asked for a secret.
pub struct CredsLookedUp<'a> {
    /// `vault`, `ssm`, `secretsmanager`, `credhub`, `kubernetes`, `dummy`.
    pub manager: &'a str,
    pub cache_hit: bool,
    pub duration: Duration,
    /// The lookup's span; its trace becomes the exemplar when sampled.
    pub span: &'a SpanContext,
}

impl CredsLookedUp<'_> {
    pub fn emit(self) {
        let cache = if self.cache_hit { "hit" } else { "miss" };
        let labels = CredsLookupLabels { manager: self.manager.into(), cache: cache.into() };
        let p = prometheus();
        p.creds_lookups.get_or_create(&labels).inc();
        p.creds_lookup_duration.get_or_create(&labels).observe(
            self.duration.as_secs_f64(),
            TraceExemplar::of(self.span),
            Some(SystemTime::now()),
        );
        otel().creds_lookup_duration.record(
            self.duration.as_secs_f64(),
            &[
                KeyValue::new(semconv::CONCOURSE_CREDS_MANAGER, self.manager.to_string()),
                KeyValue::new(semconv::CONCOURSE_CACHE_HIT, self.cache_hit),
            ],
        );
    }
}

/// The open connections of a database pool, sampled.
pub struct DbConnectionsOpen<'a> {
    pub pool: &'a str,
    pub open: i64,
}

impl DbConnectionsOpen<'_> {
    pub fn emit(self) {
        prometheus().db_connections.get_or_create(&PoolLabels { pool: self.pool.into() }).set(self.open);
    }
}

/// A lock was taken (`held: true`) or given back.
pub struct LockChanged<'a> {
    pub lock_type: &'a str,
    pub held: bool,
}

impl LockChanged<'_> {
    pub fn emit(self) {
        let gauge = prometheus().locks_held.get_or_create_owned(&LockLabels { r#type: self.lock_type.into() });
        if self.held {
            gauge.inc();
        } else {
            gauge.dec();
        }
    }
}

/// What the runtime holds right now, sampled.
pub struct RuntimeResources {
    pub containers: i64,
    pub volumes: i64,
}

impl RuntimeResources {
    pub fn emit(self) {
        prometheus().workers_containers.set(self.containers);
        prometheus().workers_volumes.set(self.volumes);
        otel().containers.record(self.containers, &[]);
        otel().volumes.record(self.volumes, &[]);
    }
}

/// How many workers are in one state (`available`, `busy`, `offline`), sampled.
pub struct WorkersCounted<'a> {
    pub state: &'a str,
    pub count: i64,
}

impl WorkersCounted<'_> {
    pub fn emit(self) {
        otel().worker_count.record(self.count, &[KeyValue::new(semconv::CICD_WORKER_STATE, self.state.to_string())]);
    }
}

/// One of atc's components hit an error that is not a build's fault.
pub struct SystemErrored<'a> {
    /// `lidar`, `scheduler`, `engine`, `gc`, ...
    pub component: &'a str,
    pub error_type: &'a str,
}

impl SystemErrored<'_> {
    pub fn emit(self) {
        otel().system_errors.add(
            1,
            &[
                KeyValue::new(semconv::CICD_SYSTEM_COMPONENT, self.component.to_string()),
                KeyValue::new(semconv::ERROR_TYPE, self.error_type.to_string()),
            ],
        );
    }
}

/// Why spans were not exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The export queue was full (the collector is slow or down).
    QueueFull,
    /// The collector refused them or could not be reached.
    ExportFailed,
    /// Finished after the exporter shut down.
    Shutdown,
}

/// Spans were dropped instead of exported.
pub struct SpansDropped {
    pub reason: DropReason,
    pub count: u64,
}

impl SpansDropped {
    pub fn emit(self) {
        let reason = match self.reason {
            DropReason::QueueFull => "queue_full",
            DropReason::ExportFailed => "export_failed",
            DropReason::Shutdown => "shutdown",
        };
        prometheus().spans_dropped.get_or_create(&ReasonLabels { reason }).inc_by(self.count);
    }
}

/// How many finished spans wait for export.
pub struct SpansQueued {
    pub count: i64,
}

impl SpansQueued {
    pub fn emit(self) {
        prometheus().spans_queued.set(self.count);
    }
}

/// An OTLP export of one signal (`traces`, `metrics`) failed.
pub struct ExportFailed {
    pub signal: &'static str,
}

impl ExportFailed {
    pub fn emit(self) {
        prometheus().exports_failed.get_or_create(&SignalLabels { signal: self.signal }).inc();
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};
    use prometheus_client::encoding::text;

    use super::*;

    fn exposition() -> String {
        let mut out = String::new();
        text::encode(&mut out, &prometheus().registry(&[("region".into(), "moon".into())])).unwrap();
        out
    }

    #[test]
    fn one_emit_feeds_the_concourse_series_with_a_trace_exemplar() {
        let span = SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            SpanId::from_hex("b7ad6b7169203331").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let job = JobRef { team: "main", pipeline: "events-test", job: "unit" };
        BuildStarted { job }.emit();
        BuildFinished {
            job,
            status: "failed",
            result: RunResult::Failure,
            duration: Duration::from_secs(42),
            span: &span,
        }
        .emit();
        StepFinished { step_type: "events-test-task", duration: Duration::from_secs(3), span: &span }.emit();
        CredsLookedUp { manager: "dummy", cache_hit: true, duration: Duration::from_millis(1), span: &span }.emit();

        let out = exposition();
        let line = |prefix: &str, parts: &[&str]| {
            out.lines().any(|l| l.starts_with(prefix) && parts.iter().all(|p| l.contains(p)))
        };
        assert!(
            line(
                "concourse_builds_finished_total{",
                &["pipeline=\"events-test\"", "status=\"failed\"", "region=\"moon\""]
            ),
            "{out}"
        );
        let exemplar = "# {trace_id=\"0af7651916cd43dd8448eb211c80319c\",span_id=\"b7ad6b7169203331\"} 42";
        assert!(line("concourse_builds_duration_seconds_bucket{", &["job=\"unit\"", exemplar]), "{out}");
        assert!(
            line("concourse_steps_duration_seconds_bucket{", &["type=\"events-test-task\"", "# {trace_id="]),
            "{out}"
        );
        assert!(line("concourse_creds_lookups_total{", &["manager=\"dummy\"", "cache=\"hit\""]), "{out}");
        assert!(
            line(
                "concourse_creds_lookup_duration_seconds_bucket{",
                &["manager=\"dummy\"", "cache=\"hit\"", "# {trace_id="]
            ),
            "{out}"
        );
    }
}
