//! The OpenTelemetry instruments atc records, named after the CI/CD and HTTP
//! semantic conventions. Exported over OTLP (or to Google) by the meter
//! provider `telemetry` installs; without one they record nothing.

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, UpDownCounter};

use super::series::{BUILD_DURATION_BUCKETS, HTTP_DURATION_BUCKETS, POD_STARTUP_BUCKETS, STEP_DURATION_BUCKETS};

/// Seconds; a lookup hits a cache or one backend request.
const CREDS_LOOKUP_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Debug, Clone)]
pub struct Instruments {
    pub pipeline_run_duration: Histogram<f64>,
    pub pipeline_run_active: UpDownCounter<i64>,
    pub pipeline_run_errors: Counter<u64>,
    pub system_errors: Counter<u64>,
    pub worker_count: Gauge<i64>,
    pub step_duration: Histogram<f64>,
    pub http_server_request_duration: Histogram<f64>,
    pub k8s_pod_startup_duration: Histogram<f64>,
    pub containers: Gauge<i64>,
    pub volumes: Gauge<i64>,
    pub creds_lookup_duration: Histogram<f64>,
}

impl Instruments {
    pub fn new(meter: &Meter) -> Instruments {
        let seconds = |name: &'static str, description: &'static str, buckets: &[f64]| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(buckets.to_vec())
                .build()
        };
        Instruments {
            pipeline_run_duration: seconds(
                "cicd.pipeline.run.duration",
                "Duration of a pipeline run (build), by state and result.",
                BUILD_DURATION_BUCKETS,
            ),
            pipeline_run_active: meter
                .i64_up_down_counter("cicd.pipeline.run.active")
                .with_unit("{run}")
                .with_description("Pipeline runs (builds) pending or executing.")
                .build(),
            pipeline_run_errors: meter
                .u64_counter("cicd.pipeline.run.errors")
                .with_unit("{error}")
                .with_description("Pipeline runs that ended in an error.")
                .build(),
            system_errors: meter
                .u64_counter("cicd.system.errors")
                .with_unit("{error}")
                .with_description("Errors in atc's own components, by component and error type.")
                .build(),
            worker_count: meter
                .i64_gauge("cicd.worker.count")
                .with_unit("{count}")
                .with_description("Workers able to run steps, by state.")
                .build(),
            step_duration: seconds("concourse.step.duration", "Duration of a step, by type.", STEP_DURATION_BUCKETS),
            http_server_request_duration: seconds(
                "http.server.request.duration",
                "Duration of HTTP server requests.",
                HTTP_DURATION_BUCKETS,
            ),
            k8s_pod_startup_duration: seconds(
                "concourse.k8s.pod.startup.duration",
                "Time from creating a step's pod to its main container running.",
                POD_STARTUP_BUCKETS,
            ),
            containers: meter
                .i64_gauge("concourse.containers")
                .with_unit("{container}")
                .with_description("Containers (pods or processes) running steps.")
                .build(),
            volumes: meter
                .i64_gauge("concourse.volumes")
                .with_unit("{volume}")
                .with_description("Volumes holding step artifacts.")
                .build(),
            creds_lookup_duration: seconds(
                "concourse.creds.lookup.duration",
                "Duration of credential lookups, by manager.",
                CREDS_LOOKUP_BUCKETS,
            ),
        }
    }
}
