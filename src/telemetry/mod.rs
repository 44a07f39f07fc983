//! Telemetry: the tracer and meter providers, their exporters (OTLP gRPC,
//! OTLP HTTP/protobuf, Google Cloud), sampling, propagation, the HTTP
//! middleware, and every span atc makes (`spans`, keys in `semconv`). Every
//! other module traces and measures through here (and `metric`); this
//! module imports none of the domain modules.
//!
//! - `Telemetry::install` at start-up, `Telemetry::shutdown` at exit.
//! - `HttpTelemetryLayer` on the router.
//! - `spans::StepSpan { .. }.start(parent)` and its kin for everything else
//!   that is traced.
//! - `current_context()` in a handler is the request's span context; a
//!   `tracing` span started without a parent becomes its child.
//! - `propagation::environment_for(&cx)` gives `TRACEPARENT` for a process.

pub mod config;
mod export_runtime;
mod gcp;
mod http_client;
mod http_server;
mod metric_exporter;
mod otlp;
pub mod propagation;
mod rate_limited_warning;
mod sampling;
pub mod semconv;
mod span_queue;
pub mod spans;

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::global;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter as _, Tracer};
use tokio::time::Instant;

pub use config::{GOOGLE_TELEMETRY_ENDPOINT, GcpConfig, KeyValuePair, MetricsConfig, OtlpAddress, OtlpConfig};
pub use config::{Protocol, TelemetryConfig, TracingConfig, parse_sampling_rate};
pub use http_server::{HttpTelemetryLayer, current_context};
pub use sampling::SamplingStrategy;

use export_runtime::ExportRuntime;
use gcp::{AccessToken, GoogleCredentials};
use http_client::ExportHttpClient;
use metric_exporter::CountedMetricExporter;
use otlp::{Destination, Signal};
use span_queue::{QueueConfig, SpanQueue};

/// The whole of shutdown, flushes included.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one HTTP exchange (export, token) may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// What is wrong with a value: a parse error of this module, or a message.
type Problem = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The flag or environment variable `name` has a value that cannot be used.
    #[error("invalid value for {name}: {problem}")]
    Invalid {
        name: String,
        #[source]
        problem: Problem,
    },
    #[error("--tracing-gcp-project-id / --metrics-gcp-project-id: {0}")]
    Gcp(#[from] gcp::GcpError),
    #[error("cannot start the telemetry exporter: {0}")]
    Runtime(#[from] std::io::Error),
}

impl TelemetryError {
    pub fn env(var: &str, problem: impl Into<Problem>) -> TelemetryError {
        TelemetryError::Invalid { name: var.to_string(), problem: problem.into() }
    }

    pub fn flag(flag: &str, problem: impl Into<Problem>) -> TelemetryError {
        TelemetryError::Invalid { name: flag.to_string(), problem: problem.into() }
    }
}

/// The running providers and the runtime their exports use.
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    runtime: Option<ExportRuntime>,
    destinations: Vec<String>,
}

impl Telemetry {
    /// Builds the providers `config` asks for and makes them (and the W3C
    /// propagator) global.
    pub async fn install(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
        let telemetry = Telemetry::start(config).await?;
        propagation::install_global_propagator();
        if let Some(provider) = &telemetry.tracer_provider {
            global::set_tracer_provider(provider.clone());
        }
        if let Some(provider) = &telemetry.meter_provider {
            global::set_meter_provider(provider.clone());
            if !crate::metric::bind_meter(&provider.meter(crate::metric::METER_NAME)) {
                tracing::warn!(
                    "metrics were recorded before telemetry started; their OTel instruments stay unexported"
                );
            }
        }
        Ok(telemetry)
    }

    /// Builds the providers without making them global.
    pub async fn start(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
        Telemetry::start_with_env(config, &|name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty())).await
    }

    /// [`Telemetry::start`] with `env` in place of the process environment.
    pub async fn start_with_env(
        config: &TelemetryConfig,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Telemetry, TelemetryError> {
        refuse_two_destinations(config)?;
        let sampler = sampling::sampler(config.tracing.sampling_strategy, config.tracing.sampling_rate, env)?;
        let queue_config = QueueConfig::from_env(env)?;
        let wants_gcp = config.tracing.gcp.is_some() || config.metrics.gcp.is_some();
        let google = if wants_gcp { Some(GoogleCredentials::from_environment(env)?) } else { None };
        let traces_otlp = otlp::otlp_destination(Signal::Traces, &config.tracing.otlp, env)?;
        let metrics_otlp = otlp::otlp_destination(Signal::Metrics, &config.metrics.otlp, env)?;
        if traces_otlp.is_none() && metrics_otlp.is_none() && google.is_none() {
            return Ok(Telemetry { tracer_provider: None, meter_provider: None, runtime: None, destinations: vec![] });
        }

        let runtime = ExportRuntime::start()?;
        let http = ExportHttpClient::new(runtime.handle(), HTTP_TIMEOUT);
        let token = match google {
            Some(credentials) => Some(AccessToken::start(credentials, http.clone(), runtime.handle()).await?),
            None => None,
        };
        let destination = |gcp: &Option<GcpConfig>, otlp: Option<Destination>| match (gcp, &token) {
            (Some(gcp), Some(token)) => Some(otlp::gcp_destination(gcp, token.clone())),
            _ => otlp,
        };
        let traces = destination(&config.tracing.gcp, traces_otlp);
        let metrics = destination(&config.metrics.gcp, metrics_otlp);
        let service_name = service_name(config, env);
        let mut destinations = vec![];

        let tracer_provider = match &traces {
            Some(destination) => {
                let mut exporter = {
                    let _inside = runtime.handle().enter();
                    destination.span_exporter(&http)?
                };
                let resource = resource(&service_name, &config.tracing.attributes, config.tracing.gcp.as_ref());
                exporter.set_resource(&resource);
                destinations.push(format!("traces to {}", destination.describe()));
                let queue = SpanQueue::start(exporter, queue_config, runtime.handle());
                Some(
                    SdkTracerProvider::builder()
                        .with_span_processor(queue)
                        .with_sampler(sampler)
                        .with_resource(resource)
                        .build(),
                )
            }
            None => None,
        };
        let meter_provider = match &metrics {
            Some(destination) => {
                let exporter = {
                    let _inside = runtime.handle().enter();
                    destination.metric_exporter(&http)?
                };
                destinations.push(format!("metrics to {} every {:?}", destination.describe(), config.metrics.interval));
                let reader = PeriodicReader::builder(CountedMetricExporter(exporter))
                    .with_interval(config.metrics.interval)
                    .build();
                let resource = resource(&service_name, &config.metrics.attributes, config.metrics.gcp.as_ref());
                Some(SdkMeterProvider::builder().with_reader(reader).with_resource(resource).build())
            }
            None => None,
        };
        Ok(Telemetry { tracer_provider, meter_provider, runtime: Some(runtime), destinations })
    }

    /// What is exported where, for the start-up log.
    pub fn destinations(&self) -> &[String] {
        &self.destinations
    }

    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.tracer_provider.as_ref()
    }

    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.meter_provider.as_ref()
    }

    /// The `tracing` → OpenTelemetry bridge, when traces are exported.
    pub fn tracing_layer<S>(&self) -> Option<tracing_opentelemetry::OpenTelemetryLayer<S, Tracer>>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        let tracer = self.tracer_provider.as_ref()?.tracer(spans::TRACER_NAME);
        Some(tracing_opentelemetry::layer().with_tracer(tracer))
    }

    /// Flushes what is queued and stops, within [`SHUTDOWN_TIMEOUT`]
    /// whether or not the collectors answer.
    pub async fn shutdown(self) {
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT - Duration::from_millis(500);
        let remaining = move || deadline.saturating_duration_since(Instant::now());
        // Both shut down with blocking calls: off the async workers, and
        // abandoned at the deadline if a collector hangs.
        let traces = self
            .tracer_provider
            .map(|provider| tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(remaining())));
        let metrics = self.meter_provider.map(|provider| tokio::task::spawn_blocking(move || provider.shutdown()));
        for (signal, task) in [("traces", traces), ("metrics", metrics)] {
            let Some(task) = task else { continue };
            match tokio::time::timeout(remaining(), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => tracing::warn!(signal, %error, "telemetry did not flush cleanly"),
                Ok(Err(_)) | Err(_) => tracing::warn!(signal, "telemetry flush gave up at the shutdown deadline"),
            }
        }
        if let Some(runtime) = self.runtime {
            let _ = tokio::task::spawn_blocking(move || runtime.stop()).await;
        }
    }
}

fn refuse_two_destinations(config: &TelemetryConfig) -> Result<(), TelemetryError> {
    for (signal, otlp, gcp) in [
        ("tracing", &config.tracing.otlp, config.tracing.gcp.is_some()),
        ("metrics", &config.metrics.otlp, config.metrics.gcp.is_some()),
    ] {
        if gcp && otlp.address.is_some() {
            return Err(TelemetryError::flag(
                &format!("--{signal}-otlp-address"),
                format!("give either --{signal}-otlp-address or --{signal}-gcp-project-id, not both"),
            ));
        }
    }
    Ok(())
}

/// `--tracing-service-name`, else `OTEL_SERVICE_NAME`, else `atc`.
fn service_name(config: &TelemetryConfig, env: &impl Fn(&str) -> Option<String>) -> String {
    config.service_name.clone().or_else(|| env("OTEL_SERVICE_NAME")).unwrap_or_else(|| "atc".to_string())
}

/// The resource: `OTEL_RESOURCE_ATTRIBUTES` first, the flags' attributes over
/// them, and the service name over all.
fn resource(service_name: &str, attributes: &[KeyValuePair], gcp: Option<&GcpConfig>) -> Resource {
    let mut builder =
        Resource::builder().with_attributes(attributes.iter().map(|a| KeyValue::new(a.key.clone(), a.value.clone())));
    if let Some(gcp) = gcp {
        // Google files the data under this project.
        builder = builder.with_attribute(KeyValue::new(semconv::GCP_PROJECT_ID, gcp.project_id.clone()));
    }
    builder.with_service_name(service_name.to_string()).build()
}
