//! An OTLP receiver inside the test process, standing in for a collector:
//! gRPC (`TraceService`, `MetricsService`) and HTTP/protobuf (`/v1/traces`,
//! `/v1/metrics`), keeping what it receives in memory, flattened for
//! assertions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use prost::Message;
use tokio::sync::oneshot;

/// A span as received, with the attributes of its resource.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    /// OTLP's numbering: 2 is SERVER.
    pub kind: i32,
    /// OTLP's numbering: 2 is ERROR.
    pub status_code: i32,
    pub status_message: String,
    pub attributes: HashMap<String, String>,
    pub resource: HashMap<String, String>,
    /// Request headers (gRPC metadata) of the export that carried it.
    pub headers: HashMap<String, String>,
    /// Its events in order: name and attributes.
    pub events: Vec<(String, HashMap<String, String>)>,
    /// The spans it links to: trace id and span id.
    pub links: Vec<(String, String)>,
}

/// A metric as received: its name, its resource, and the attributes of its data points.
#[derive(Debug, Clone)]
pub struct ReceivedMetric {
    pub name: String,
    pub resource: HashMap<String, String>,
    pub point_attributes: Vec<HashMap<String, String>>,
    pub headers: HashMap<String, String>,
}

#[derive(Default)]
struct Received {
    spans: Vec<ReceivedSpan>,
    /// Every trace export as it came, encoded.
    trace_exports: Vec<Vec<u8>>,
    metrics: Vec<ReceivedMetric>,
}

type Shared = Arc<Mutex<Received>>;

pub struct OtlpReceiver {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    received: Shared,
    stop: Vec<oneshot::Sender<()>>,
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        for stop in self.stop.drain(..) {
            let _ = stop.send(());
        }
    }
}

impl OtlpReceiver {
    pub async fn start() -> OtlpReceiver {
        let received = Shared::default();

        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_addr = grpc.local_addr().unwrap();
        let (stop_grpc, grpc_stopped) = oneshot::channel::<()>();
        let services = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(received.clone())))
            .add_service(MetricsServiceServer::new(Collector(received.clone())));
        tokio::spawn(services.serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(grpc), async {
            let _ = grpc_stopped.await;
        }));

        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http.local_addr().unwrap();
        let (stop_http, http_stopped) = oneshot::channel::<()>();
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(http_traces))
            .route("/v1/metrics", axum::routing::post(http_metrics))
            .with_state(received.clone());
        tokio::spawn(async move {
            axum::serve(http, app)
                .with_graceful_shutdown(async {
                    let _ = http_stopped.await;
                })
                .await
        });

        OtlpReceiver { grpc_addr, http_addr, received, stop: vec![stop_grpc, stop_http] }
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received.lock().unwrap().spans.clone()
    }

    /// The protobuf bytes of every trace export received, to search
    /// whatever a span may carry.
    pub fn trace_exports(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap().trace_exports.clone()
    }

    pub fn metrics(&self) -> Vec<ReceivedMetric> {
        self.received.lock().unwrap().metrics.clone()
    }

    /// Polls until a span satisfies `wanted`, for at most `within`.
    pub async fn wait_for_span(&self, within: Duration, wanted: impl Fn(&ReceivedSpan) -> bool) -> ReceivedSpan {
        let deadline = Instant::now() + within;
        loop {
            if let Some(span) = self.spans().into_iter().find(&wanted) {
                return span;
            }
            assert!(Instant::now() < deadline, "no matching span within {within:?}; received: {:#?}", self.spans());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls until a metric satisfies `wanted`, for at most `within`.
    pub async fn wait_for_metric(&self, within: Duration, wanted: impl Fn(&ReceivedMetric) -> bool) -> ReceivedMetric {
        let deadline = Instant::now() + within;
        loop {
            if let Some(metric) = self.metrics().into_iter().find(&wanted) {
                return metric;
            }
            let names: Vec<String> = self.metrics().into_iter().map(|m| m.name).collect();
            assert!(Instant::now() < deadline, "no matching metric within {within:?}; received: {names:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

struct Collector(Shared);

#[async_trait::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let headers = request.metadata().clone().into_headers();
        record_traces(&self.0, &headers, request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[async_trait::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let headers = request.metadata().clone().into_headers();
        record_metrics(&self.0, &headers, request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

async fn http_traces(
    axum::extract::State(received): axum::extract::State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ([(&'static str, &'static str); 1], Vec<u8>) {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf trace export");
    record_traces(&received, &headers, request);
    ([("content-type", "application/x-protobuf")], ExportTraceServiceResponse { partial_success: None }.encode_to_vec())
}

async fn http_metrics(
    axum::extract::State(received): axum::extract::State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ([(&'static str, &'static str); 1], Vec<u8>) {
    let request = ExportMetricsServiceRequest::decode(body).expect("an OTLP protobuf metrics export");
    record_metrics(&received, &headers, request);
    (
        [("content-type", "application/x-protobuf")],
        ExportMetricsServiceResponse { partial_success: None }.encode_to_vec(),
    )
}

fn record_traces(received: &Shared, headers: &HeaderMap, request: ExportTraceServiceRequest) {
    let headers = header_map(headers);
    let mut received = received.lock().unwrap();
    received.trace_exports.push(request.encode_to_vec());
    for resource_spans in request.resource_spans {
        let resource = attributes(resource_spans.resource.map(|r| r.attributes).unwrap_or_default());
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.spans.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    status_code: span.status.as_ref().map(|s| s.code).unwrap_or_default(),
                    status_message: span.status.map(|s| s.message).unwrap_or_default(),
                    attributes: attributes(span.attributes),
                    resource: resource.clone(),
                    headers: headers.clone(),
                    events: span.events.into_iter().map(|e| (e.name, attributes(e.attributes))).collect(),
                    links: span.links.into_iter().map(|l| (hex(&l.trace_id), hex(&l.span_id))).collect(),
                });
            }
        }
    }
}

fn record_metrics(received: &Shared, headers: &HeaderMap, request: ExportMetricsServiceRequest) {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let headers = header_map(headers);
    let mut received = received.lock().unwrap();
    for resource_metrics in request.resource_metrics {
        let resource = attributes(resource_metrics.resource.map(|r| r.attributes).unwrap_or_default());
        for scope in resource_metrics.scope_metrics {
            for metric in scope.metrics {
                let point_attributes = match metric.data {
                    Some(Data::Histogram(h)) => h.data_points.into_iter().map(|p| attributes(p.attributes)).collect(),
                    Some(Data::Sum(s)) => s.data_points.into_iter().map(|p| attributes(p.attributes)).collect(),
                    Some(Data::Gauge(g)) => g.data_points.into_iter().map(|p| attributes(p.attributes)).collect(),
                    _ => vec![],
                };
                received.metrics.push(ReceivedMetric {
                    name: metric.name,
                    resource: resource.clone(),
                    point_attributes,
                    headers: headers.clone(),
                });
            }
        }
    }
}

fn header_map(headers: &HeaderMap) -> HashMap<String, String> {
    headers.iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string())).collect()
}

fn attributes(list: Vec<KeyValue>) -> HashMap<String, String> {
    list.into_iter()
        .map(|kv| {
            let value = match kv.value.and_then(|v| v.value) {
                Some(any_value::Value::StringValue(s)) => s,
                Some(any_value::Value::IntValue(i)) => i.to_string(),
                Some(any_value::Value::BoolValue(b)) => b.to_string(),
                Some(any_value::Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key, value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
