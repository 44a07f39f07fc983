//! The metric exporter, wrapped so that a failed export is counted and
//! warned about (rate-limited) instead of going unnoticed.

use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;

use super::rate_limited_warning::RateLimitedWarning;
use crate::metric::ExportFailed;

static EXPORT_FAILED: RateLimitedWarning = RateLimitedWarning::new("cannot export metrics", Duration::from_secs(60));

#[derive(Debug)]
pub struct CountedMetricExporter<E>(pub E);

impl<E: PushMetricExporter> PushMetricExporter for CountedMetricExporter<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.0.export(metrics).await;
        if let Err(error) = &result {
            ExportFailed { signal: "metrics" }.emit();
            EXPORT_FAILED.warn(error);
        }
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.0.temporality()
    }
}
