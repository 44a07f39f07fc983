//! Where each signal goes: an OTLP collector (gRPC or HTTP/protobuf) or
//! Google's OTLP endpoint, resolved from the flags and, where they are
//! unset, the standard `OTEL_EXPORTER_OTLP_*` variables; and the exporters
//! that send there.

use std::collections::HashMap;

use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::ClientTlsConfig;

use super::TelemetryError;
use super::config::{GcpConfig, KeyValuePair, OtlpConfig, Protocol};
use super::gcp::AccessToken;
use super::http_client::ExportHttpClient;

/// A telemetry signal and the names its settings go by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    fn flag_prefix(self) -> &'static str {
        match self {
            Signal::Traces => "--tracing",
            Signal::Metrics => "--metrics",
        }
    }

    fn env_infix(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
        }
    }

    fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }
}

/// Where one signal is exported.
pub enum Destination {
    Otlp { url: String, protocol: Protocol, headers: Vec<KeyValuePair> },
    Gcp { project_id: String, endpoint: String, token: AccessToken },
}

/// The OTLP destination the flags, or else the `OTEL_*` variables, name;
/// `None` when neither names one.
pub fn otlp_destination(
    signal: Signal,
    config: &OtlpConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Destination>, TelemetryError> {
    let infix = signal.env_infix();
    let protocol = match config.protocol {
        Some(protocol) => protocol,
        None => {
            let signal_var = format!("OTEL_EXPORTER_OTLP_{infix}_PROTOCOL");
            let (var, value) = match env(&signal_var) {
                Some(value) => (signal_var, Some(value)),
                None => ("OTEL_EXPORTER_OTLP_PROTOCOL".to_string(), env("OTEL_EXPORTER_OTLP_PROTOCOL")),
            };
            match value {
                Some(value) => value.parse().map_err(|message| TelemetryError::env(&var, message))?,
                None => Protocol::Grpc,
            }
        }
    };
    let http_path = (protocol == Protocol::HttpProtobuf).then(|| signal.http_path());
    let url = if let Some(address) = &config.address {
        address
            .url(config.use_tls, http_path)
            .map_err(|message| TelemetryError::flag(&format!("{}-otlp-address", signal.flag_prefix()), message))?
    } else if let Some(url) = env(&format!("OTEL_EXPORTER_OTLP_{infix}_ENDPOINT")) {
        url
    } else if let Some(base) = env("OTEL_EXPORTER_OTLP_ENDPOINT") {
        // The generic endpoint is a base URL: HTTP adds the signal's path.
        format!("{}{}", base.trim_end_matches('/'), http_path.unwrap_or_default())
    } else {
        return Ok(None);
    };
    Ok(Some(Destination::Otlp { url, protocol, headers: config.headers.clone() }))
}

/// Google's OTLP endpoint for `project_id`, authorised by `token`.
pub fn gcp_destination(config: &GcpConfig, token: AccessToken) -> Destination {
    Destination::Gcp { project_id: config.project_id.clone(), endpoint: config.endpoint.clone(), token }
}

impl Destination {
    pub fn describe(&self) -> String {
        match self {
            Destination::Otlp { url, protocol: Protocol::Grpc, .. } => format!("OTLP gRPC {url}"),
            Destination::Otlp { url, protocol: Protocol::HttpProtobuf, .. } => format!("OTLP HTTP {url}"),
            Destination::Gcp { project_id, .. } => format!("Google Cloud project {project_id}"),
        }
    }

    /// Must run inside the export runtime: the gRPC channel lives there.
    pub fn span_exporter(&self, http: &ExportHttpClient) -> Result<SpanExporter, TelemetryError> {
        let built = match self {
            Destination::Otlp { url, protocol: Protocol::HttpProtobuf, headers } => SpanExporter::builder()
                .with_http()
                .with_endpoint(url)
                .with_headers(header_map(headers))
                .with_http_client(http.clone())
                .build(),
            Destination::Otlp { url, protocol: Protocol::Grpc, headers } => {
                grpc(SpanExporter::builder().with_tonic(), url, headers, None).build()
            }
            Destination::Gcp { project_id, endpoint, token } => {
                grpc(SpanExporter::builder().with_tonic(), endpoint, &[], Some((project_id, token))).build()
            }
        };
        built.map_err(|e| self.build_error(Signal::Traces, e))
    }

    /// Must run inside the export runtime: the gRPC channel lives there.
    pub fn metric_exporter(&self, http: &ExportHttpClient) -> Result<MetricExporter, TelemetryError> {
        let built = match self {
            Destination::Otlp { url, protocol: Protocol::HttpProtobuf, headers } => MetricExporter::builder()
                .with_http()
                .with_endpoint(url)
                .with_headers(header_map(headers))
                .with_http_client(http.clone())
                .build(),
            Destination::Otlp { url, protocol: Protocol::Grpc, headers } => {
                grpc(MetricExporter::builder().with_tonic(), url, headers, None).build()
            }
            Destination::Gcp { project_id, endpoint, token } => {
                grpc(MetricExporter::builder().with_tonic(), endpoint, &[], Some((project_id, token))).build()
            }
        };
        built.map_err(|e| self.build_error(Signal::Metrics, e))
    }

    fn build_error(&self, signal: Signal, error: impl std::fmt::Display) -> TelemetryError {
        let flag = match self {
            Destination::Otlp { .. } => format!("{}-otlp-address", signal.flag_prefix()),
            Destination::Gcp { .. } => format!("{}-gcp-project-id", signal.flag_prefix()),
        };
        TelemetryError::flag(&flag, format!("cannot export {} to {}: {error}", signal.name(), self.describe()))
    }
}

fn header_map(headers: &[KeyValuePair]) -> HashMap<String, String> {
    headers.iter().map(|h| (h.key.clone(), h.value.clone())).collect()
}

/// A gRPC exporter builder for `url` with `headers`, TLS for `https://`,
/// and Google's authorisation when `google` is given.
fn grpc<B: WithExportConfig + WithTonicConfig>(
    builder: B,
    url: &str,
    headers: &[KeyValuePair],
    google: Option<(&String, &AccessToken)>,
) -> B {
    let mut metadata = MetadataMap::new();
    for header in headers {
        // Both were validated as HTTP header name and value by the flag parser.
        if let (Ok(key), Ok(value)) =
            (MetadataKey::from_bytes(header.key.as_bytes()), MetadataValue::try_from(header.value.as_str()))
        {
            metadata.append(key, value);
        }
    }
    let mut builder = builder.with_endpoint(url).with_metadata(metadata);
    if url.starts_with("https://") {
        builder = builder.with_tls_config(ClientTlsConfig::new().with_enabled_roots());
    }
    if let Some((project_id, token)) = google {
        let project = MetadataValue::try_from(project_id.as_str()).ok();
        let token = token.clone();
        builder = builder.with_interceptor(move |mut request: tonic::Request<()>| {
            let bearer = MetadataValue::try_from(format!("Bearer {}", token.current()))
                .map_err(|_| tonic::Status::unauthenticated("the Google access token is not a valid header"))?;
            request.metadata_mut().insert("authorization", bearer);
            if let Some(project) = &project {
                request.metadata_mut().insert("x-goog-user-project", project.clone());
            }
            Ok(request)
        });
    }
    builder
}
