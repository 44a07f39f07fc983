//! Metrics: what happened, recorded once and exposed twice — as Concourse's
//! Prometheus series (`/metrics`, with trace exemplars) and as OpenTelemetry
//! instruments (OTLP). Call sites emit an event from `events` and never name
//! a series; each event writes its Prometheus series and its OTel instrument
//! together, so the two cannot drift apart.
//!
//! Uses no other atc module: everything above may emit.

mod endpoint;
pub mod events;
mod exemplar;
mod instruments;
mod series;

use std::sync::{LazyLock, OnceLock};

use opentelemetry::metrics::Meter;

pub use endpoint::{MetricsEndpoint, PrometheusOptions};
pub use events::*;
pub use exemplar::TraceExemplar;
pub use instruments::Instruments;
pub use series::PrometheusSeries;

/// The instrumentation scope of every OTel instrument atc records.
pub const METER_NAME: &str = "atc";

struct Metrics {
    prometheus: PrometheusSeries,
    otel: OnceLock<Instruments>,
}

static METRICS: LazyLock<Metrics> =
    LazyLock::new(|| Metrics { prometheus: PrometheusSeries::default(), otel: OnceLock::new() });

/// Points the OTel instruments at `meter`. Returns false when they were
/// already created (then they keep recording into the meter they had).
pub fn bind_meter(meter: &Meter) -> bool {
    METRICS.otel.set(Instruments::new(meter)).is_ok()
}

/// The Prometheus series, for the endpoint and for tests.
pub fn prometheus() -> &'static PrometheusSeries {
    &METRICS.prometheus
}

fn otel() -> &'static Instruments {
    // Without `bind_meter` (tests, tools), the global meter: a no-op unless
    // someone installed a provider.
    METRICS.otel.get_or_init(|| Instruments::new(&opentelemetry::global::meter(METER_NAME)))
}
