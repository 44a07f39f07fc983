//! What the operator asked for: the values of the `--tracing-*` and
//! `--metrics-*` flags, each parsed once with a message that names what is
//! accepted. The standard `OTEL_*` variables are consulted later, only for
//! what these leave unset.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::sampling::SamplingStrategy;

/// Google's OTLP endpoint for Cloud Trace and Cloud Monitoring.
pub const GOOGLE_TELEMETRY_ENDPOINT: &str = "https://telemetry.googleapis.com:443";

#[derive(Debug, Clone, Default)]
pub struct TelemetryConfig {
    /// `service.name`; unset means `OTEL_SERVICE_NAME`, else `atc`.
    pub service_name: Option<String>,
    pub tracing: TracingConfig,
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, Default)]
pub struct TracingConfig {
    pub attributes: Vec<KeyValuePair>,
    pub otlp: OtlpConfig,
    pub gcp: Option<GcpConfig>,
    /// Unset means `OTEL_TRACES_SAMPLER`, else `always`.
    pub sampling_strategy: Option<SamplingStrategy>,
    /// Unset means `OTEL_TRACES_SAMPLER_ARG`, else 1.0.
    pub sampling_rate: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub attributes: Vec<KeyValuePair>,
    pub otlp: OtlpConfig,
    pub gcp: Option<GcpConfig>,
    pub interval: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { attributes: vec![], otlp: OtlpConfig::default(), gcp: None, interval: Duration::from_secs(60) }
    }
}

/// One signal's OTLP settings. Without an address, export is on only when
/// `OTEL_EXPORTER_OTLP_(TRACES|METRICS_)ENDPOINT` names one.
#[derive(Debug, Clone, Default)]
pub struct OtlpConfig {
    pub address: Option<OtlpAddress>,
    /// Unset means `OTEL_EXPORTER_OTLP_(…_)PROTOCOL`, else gRPC.
    pub protocol: Option<Protocol>,
    pub headers: Vec<KeyValuePair>,
    pub use_tls: bool,
}

/// Export to Google Cloud (Trace or Monitoring) with Application Default Credentials.
#[derive(Debug, Clone)]
pub struct GcpConfig {
    pub project_id: String,
    /// Always [`GOOGLE_TELEMETRY_ENDPOINT`] from the command line; tests
    /// point it at a local receiver (an `http://` endpoint goes without TLS).
    pub endpoint: String,
}

impl GcpConfig {
    pub fn new(project_id: String) -> GcpConfig {
        GcpConfig { project_id, endpoint: GOOGLE_TELEMETRY_ENDPOINT.to_string() }
    }
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not one of grpc, http/protobuf")]
pub struct UnknownProtocol(pub String);

impl FromStr for Protocol {
    type Err = UnknownProtocol;
    fn from_str(value: &str) -> Result<Self, UnknownProtocol> {
        match value {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            _ => Err(UnknownProtocol(value.to_string())),
        }
    }
}

impl Protocol {
    pub fn parse_flag(value: &str) -> Result<Protocol, UnknownProtocol> {
        value.parse()
    }
}

/// A collector address: `HOST:PORT` (as Concourse takes it; the scheme
/// follows `--…-use-tls`) or an `http://`/`https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpAddress {
    /// `http` or `https` when the address said so.
    scheme: Option<&'static str>,
    /// `host:port`, brackets kept for IPv6.
    authority: String,
    /// The path after the authority, `""` when none.
    path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOtlpAddress {
    #[error("'{0}' is not HOST:PORT or an http:// or https:// URL")]
    Malformed(String),
    /// An `http://` address where `--…-use-tls` asks for TLS.
    #[error("'{0}' is an http:// URL but TLS was asked for")]
    HttpWithTls(String),
}

impl OtlpAddress {
    pub fn parse_flag(value: &str) -> Result<OtlpAddress, InvalidOtlpAddress> {
        let bad = || InvalidOtlpAddress::Malformed(value.to_string());
        let (scheme, rest) = if let Some(rest) = value.strip_prefix("http://") {
            (Some("http"), rest)
        } else if let Some(rest) = value.strip_prefix("https://") {
            (Some("https"), rest)
        } else if value.contains("://") {
            return Err(bad());
        } else {
            (None, value)
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if scheme.is_none() && !path.is_empty() {
            return Err(bad());
        }
        let uri: axum::http::Uri = format!("http://{authority}{path}").parse().map_err(|_| bad())?;
        let has_port = uri.port_u16().is_some();
        if uri.host().is_none_or(str::is_empty) || (scheme.is_none() && !has_port) || authority.contains('@') {
            return Err(bad());
        }
        Ok(OtlpAddress { scheme, authority: authority.to_string(), path: path.to_string() })
    }

    /// The endpoint URL; `signal_path` (`/v1/traces`) is added for
    /// HTTP when the address has no path of its own.
    pub fn url(&self, use_tls: bool, signal_path: Option<&str>) -> Result<String, InvalidOtlpAddress> {
        let scheme = match (self.scheme, use_tls) {
            (Some("http"), true) => return Err(InvalidOtlpAddress::HttpWithTls(self.to_string())),
            (Some(scheme), _) => scheme,
            (None, true) => "https",
            (None, false) => "http",
        };
        let path = match signal_path {
            Some(signal_path) if self.path.is_empty() => signal_path,
            _ => &self.path,
        };
        Ok(format!("{scheme}://{}{path}", self.authority))
    }
}

impl fmt::Display for OtlpAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scheme {
            Some(scheme) => write!(f, "{scheme}://{}{}", self.authority, self.path),
            None => write!(f, "{}", self.authority),
        }
    }
}

/// A `KEY:VALUE` flag value (attributes and headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValuePair {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPair {
    #[error("'{0}' is not KEY:VALUE")]
    NotKeyValue(String),
    #[error("'{0}' is not a valid header name")]
    HeaderName(String),
    /// The value of header `0` has characters a header cannot carry.
    #[error("the value of header '{0}' has characters a header cannot carry")]
    HeaderValue(String),
}

impl KeyValuePair {
    /// An attribute: any non-empty key.
    pub fn parse_attribute(value: &str) -> Result<KeyValuePair, InvalidPair> {
        split_pair(value)
    }

    /// A header: the key must be a valid HTTP header name, the value a valid header value.
    pub fn parse_header(value: &str) -> Result<KeyValuePair, InvalidPair> {
        let pair = split_pair(value)?;
        let key = pair.key.to_ascii_lowercase();
        if axum::http::HeaderName::from_bytes(key.as_bytes()).is_err() {
            return Err(InvalidPair::HeaderName(pair.key));
        }
        if axum::http::HeaderValue::from_str(&pair.value).is_err() {
            return Err(InvalidPair::HeaderValue(pair.key));
        }
        Ok(KeyValuePair { key, value: pair.value })
    }
}

fn split_pair(value: &str) -> Result<KeyValuePair, InvalidPair> {
    match value.split_once(':') {
        Some((key, val)) if !key.trim().is_empty() => {
            Ok(KeyValuePair { key: key.trim().to_string(), value: val.trim().to_string() })
        }
        _ => Err(InvalidPair::NotKeyValue(value.to_string())),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a number from 0.0 to 1.0")]
pub struct InvalidSamplingRate(pub String);

/// `--tracing-sampling-rate`: a fraction from 0 to 1.
pub fn parse_sampling_rate(value: &str) -> Result<f64, InvalidSamplingRate> {
    match value.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(InvalidSamplingRate(value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_concourse_host_port_or_urls() {
        let plain = OtlpAddress::parse_flag("collector:4317").unwrap();
        assert_eq!(plain.url(false, None).unwrap(), "http://collector:4317");
        assert_eq!(plain.url(true, None).unwrap(), "https://collector:4317");
        assert_eq!(plain.url(false, Some("/v1/traces")).unwrap(), "http://collector:4317/v1/traces");

        let url = OtlpAddress::parse_flag("https://api.honeycomb.io/").unwrap();
        assert_eq!(url.url(false, Some("/v1/traces")).unwrap(), "https://api.honeycomb.io/v1/traces");
        let with_path = OtlpAddress::parse_flag("http://[::1]:4318/custom/traces").unwrap();
        assert_eq!(with_path.url(false, Some("/v1/traces")).unwrap(), "http://[::1]:4318/custom/traces");
        assert!(OtlpAddress::parse_flag("http://collector:4318").unwrap().url(true, None).is_err());
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in
            ["", "collector", "collector:port", "ftp://collector:21", "collector:4317/path", "http://", "http://u@h:1"]
        {
            assert!(OtlpAddress::parse_flag(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn pairs_split_at_the_first_colon() {
        let pair = KeyValuePair::parse_attribute("deployment.environment: prod:eu").unwrap();
        assert_eq!((pair.key.as_str(), pair.value.as_str()), ("deployment.environment", "prod:eu"));
        assert!(KeyValuePair::parse_attribute("novalue").is_err());
        assert!(KeyValuePair::parse_attribute(":value").is_err());
        assert_eq!(KeyValuePair::parse_header("X-Api-Key:abc").unwrap().key, "x-api-key");
        assert!(KeyValuePair::parse_header("bad header:abc").is_err());
        assert!(KeyValuePair::parse_header("x-key:a\u{7}b").is_err());
    }

    #[test]
    fn rates_are_fractions() {
        assert_eq!(parse_sampling_rate("0.25"), Ok(0.25));
        assert_eq!(parse_sampling_rate("1"), Ok(1.0));
        for bad in ["2", "-0.1", "NaN", "half"] {
            assert!(parse_sampling_rate(bad).is_err(), "{bad}");
        }
    }
}
