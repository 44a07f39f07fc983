//! The Prometheus series atc exposes, with Concourse's names and labels so
//! existing dashboards keep working. Only `events` writes to them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::exemplar::TraceExemplar;

/// Seconds; the OTel HTTP semantic conventions' buckets.
pub const HTTP_DURATION_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
/// Seconds; Concourse's build duration buckets.
pub const BUILD_DURATION_BUCKETS: &[f64] =
    &[1.0, 60.0, 180.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0, 7200.0, 18000.0, 36000.0];
/// Seconds; steps range from a cached get to an hour-long task.
pub const STEP_DURATION_BUCKETS: &[f64] =
    &[0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 180.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0];
/// Seconds; from a warm node to a large image pull.
/// Credential lookups: a cache hit takes microseconds, a remote store milliseconds to its timeout.
pub const CREDS_LOOKUP_BUCKETS: &[f64] = &[0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];
pub const POD_STARTUP_BUCKETS: &[f64] = &[0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];

pub type TracedHistogram = HistogramWithExemplars<TraceExemplar>;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct JobLabels {
    pub team: String,
    pub pipeline: String,
    pub job: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FinishedBuildLabels {
    pub team: String,
    pub pipeline: String,
    pub job: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StepLabels {
    pub r#type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CredsLookupLabels {
    pub manager: String,
    pub cache: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct LockLabels {
    pub r#type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SignalLabels {
    pub signal: &'static str,
}

type TracedFamily<L> = Family<L, TracedHistogram, fn() -> TracedHistogram>;

/// Every Prometheus series. Cloning shares the values.
#[derive(Debug, Clone)]
pub struct PrometheusSeries {
    pub builds_started: Counter,
    pub builds_finished: Family<FinishedBuildLabels, Counter>,
    pub builds_running: Gauge,
    pub builds_duration: TracedFamily<JobLabels>,
    pub steps_duration: TracedFamily<StepLabels>,
    pub steps_waiting: Family<StepLabels, Gauge>,
    pub http_responses_duration: TracedFamily<HttpLabels>,
    pub k8s_pod_startup_duration: TracedHistogram,
    pub lidar_checks_started: Counter,
    pub lidar_checks_finished: Family<StatusLabels, Counter>,
    pub jobs_scheduled: Counter,
    pub creds_lookups: Family<CredsLookupLabels, Counter>,
    pub creds_lookup_duration: TracedFamily<CredsLookupLabels>,
    pub db_connections: Family<PoolLabels, Gauge>,
    pub locks_held: Family<LockLabels, Gauge>,
    pub workers_containers: Gauge,
    pub workers_volumes: Gauge,
    pub spans_dropped: Family<ReasonLabels, Counter>,
    pub spans_queued: Gauge,
    pub exports_failed: Family<SignalLabels, Counter>,
}

impl Default for PrometheusSeries {
    fn default() -> Self {
        PrometheusSeries {
            builds_started: Counter::default(),
            builds_finished: Family::default(),
            builds_running: Gauge::default(),
            builds_duration: Family::new_with_constructor(|| traced_histogram(BUILD_DURATION_BUCKETS)),
            steps_duration: Family::new_with_constructor(|| traced_histogram(STEP_DURATION_BUCKETS)),
            steps_waiting: Family::default(),
            http_responses_duration: Family::new_with_constructor(|| traced_histogram(HTTP_DURATION_BUCKETS)),
            k8s_pod_startup_duration: traced_histogram(POD_STARTUP_BUCKETS),
            lidar_checks_started: Counter::default(),
            lidar_checks_finished: Family::default(),
            jobs_scheduled: Counter::default(),
            creds_lookups: Family::default(),
            creds_lookup_duration: Family::new_with_constructor(|| traced_histogram(CREDS_LOOKUP_BUCKETS)),
            db_connections: Family::default(),
            locks_held: Family::default(),
            workers_containers: Gauge::default(),
            workers_volumes: Gauge::default(),
            spans_dropped: Family::default(),
            spans_queued: Gauge::default(),
            exports_failed: Family::default(),
        }
    }
}

fn traced_histogram(buckets: &[f64]) -> TracedHistogram {
    HistogramWithExemplars::new(buckets.iter().copied())
}

impl PrometheusSeries {
    /// A registry exposing every series, each carrying `constant_labels`
    /// (`--metrics-attribute`). Counters are registered without `_total`
    /// and help texts without a final period: the encoders add both. A
    /// labelled series shows once it has a value, as in Concourse.
    pub fn registry(&self, constant_labels: &[(String, String)]) -> Registry {
        let labels = constant_labels.iter().map(|(k, v)| (k.clone().into(), v.clone().into()));
        let mut r = Registry::with_labels(labels);
        r.register("concourse_builds_started", "Builds started", self.builds_started.clone());
        r.register("concourse_builds_finished", "Builds finished, by status", self.builds_finished.clone());
        r.register("concourse_builds_running", "Builds running now", self.builds_running.clone());
        r.register("concourse_builds_duration_seconds", "How long builds took", self.builds_duration.clone());
        r.register("concourse_steps_duration_seconds", "How long steps took, by type", self.steps_duration.clone());
        r.register("concourse_steps_waiting", "Steps waiting to run, by type", self.steps_waiting.clone());
        r.register(
            "concourse_http_responses_duration_seconds",
            "Response time in seconds, by method, route template and status",
            self.http_responses_duration.clone(),
        );
        r.register(
            "concourse_k8s_pod_startup_duration_seconds",
            "Time from creating a step's pod to its main container running",
            self.k8s_pod_startup_duration.clone(),
        );
        r.register("concourse_lidar_checks_started", "Resource checks started", self.lidar_checks_started.clone());
        r.register(
            "concourse_lidar_checks_finished",
            "Resource checks finished, by status",
            self.lidar_checks_finished.clone(),
        );
        r.register("concourse_jobs_scheduled", "Times the scheduler scheduled a job", self.jobs_scheduled.clone());
        r.register(
            "concourse_creds_lookups",
            "Credential lookups, by manager and cache hit",
            self.creds_lookups.clone(),
        );
        r.register(
            "concourse_creds_lookup_duration_seconds",
            "Time a credential lookup took, by manager and cache hit",
            self.creds_lookup_duration.clone(),
        );
        r.register("concourse_db_connections", "Open database connections, by pool", self.db_connections.clone());
        r.register("concourse_locks_held", "Locks held, by type", self.locks_held.clone());
        r.register(
            "concourse_workers_containers",
            "Containers (pods or processes) running steps",
            self.workers_containers.clone(),
        );
        r.register("concourse_workers_volumes", "Volumes holding step artifacts", self.workers_volumes.clone());
        r.register(
            "concourse_tracing_spans_dropped",
            "Spans not exported, by reason (queue_full, export_failed, shutdown)",
            self.spans_dropped.clone(),
        );
        r.register("concourse_tracing_spans_queued", "Spans waiting for export", self.spans_queued.clone());
        r.register(
            "concourse_telemetry_exports_failed",
            "Failed OTLP exports, by signal (traces, metrics)",
            self.exports_failed.clone(),
        );
        r
    }
}
