//! The HTTP server middleware: one SERVER span per request, named
//! `{METHOD} {route template}` and a child of the caller's `traceparent`,
//! plus the request-duration metrics. Handlers run with the span's context
//! current, so `opentelemetry::Context::current()` (and `tracing` spans
//! started there) are its children.
//!
//! Apply it with `Router::layer` so it runs after routing: the route
//! template (`MatchedPath`) is known then, also for the fallback.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath};
use axum::http::{HeaderMap, Request, Response, header};
use opentelemetry::context::FutureExt;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use tower::{Layer, Service};

use super::propagation::extract_from_headers;
use super::semconv::*;
use super::spans;
use crate::metric::HttpRequestServed;

/// Traces and measures every request of the service it wraps. Takes the
/// global tracer when built, so build it after `Telemetry::install`.
#[derive(Clone)]
pub struct HttpTelemetryLayer {
    tracer: Arc<BoxedTracer>,
}

impl HttpTelemetryLayer {
    pub fn new() -> HttpTelemetryLayer {
        HttpTelemetryLayer { tracer: Arc::new(spans::tracer()) }
    }
}

impl Default for HttpTelemetryLayer {
    fn default() -> Self {
        HttpTelemetryLayer::new()
    }
}

impl<S> Layer<S> for HttpTelemetryLayer {
    type Service = HttpTelemetry<S>;
    fn layer(&self, inner: S) -> HttpTelemetry<S> {
        HttpTelemetry { inner, tracer: self.tracer.clone() }
    }
}

#[derive(Clone)]
pub struct HttpTelemetry<S> {
    inner: S,
    tracer: Arc<BoxedTracer>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpTelemetry<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    ReqBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
        let parent = extract_from_headers(request.headers());
        let name = match &route {
            Some(route) => format!("{method} {route}"),
            // Semantic conventions: without a route, the method alone.
            None => method.to_string(),
        };
        let mut span =
            self.tracer.span_builder(name).with_kind(SpanKind::Server).start_with_context(&*self.tracer, &parent);
        // Attributes cost allocations; an unsampled span never shows them.
        if span.is_recording() {
            span.set_attributes(request_attributes(&request, route.as_deref()));
        }
        let cx = parent.with_span(span);

        // The clone that was made ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let response = inner.call(request).with_context(cx.clone());
        Box::pin(async move {
            let result = response.await;
            let span = cx.span();
            let status = match &result {
                Ok(response) => response.status().as_u16(),
                // axum's services are infallible; a failing one answers nothing.
                Err(_) => 500,
            };
            if span.is_recording() {
                span.set_attribute(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
                if status >= 500 {
                    span.set_attribute(KeyValue::new(ERROR_TYPE, status.to_string()));
                    span.set_status(Status::error(""));
                }
            }
            span.end();
            HttpRequestServed {
                method: method.as_str(),
                route: route.as_deref(),
                status,
                duration: started.elapsed(),
                span: span.span_context(),
            }
            .emit();
            result
        })
    }
}

fn request_attributes<B>(request: &Request<B>, route: Option<&str>) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(7);
    attributes.push(KeyValue::new(HTTP_REQUEST_METHOD, request.method().as_str().to_owned()));
    attributes.push(KeyValue::new(URL_PATH, request.uri().path().to_owned()));
    attributes.push(KeyValue::new(URL_SCHEME, "http"));
    if let Some(route) = route {
        attributes.push(KeyValue::new(HTTP_ROUTE, route.to_owned()));
    }
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    if let Some(client) = client_address(request.headers(), peer) {
        attributes.push(KeyValue::new(CLIENT_ADDRESS, client));
    }
    if let Some(agent) = request.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()) {
        attributes.push(KeyValue::new(USER_AGENT_ORIGINAL, agent.to_owned()));
    }
    attributes
}

/// The client as a proxy reports it (`X-Forwarded-For`), else the peer.
fn client_address(headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<String> {
    let forwarded = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    match forwarded {
        Some(client) => Some(client.to_owned()),
        None => peer.map(|p| p.ip().to_string()),
    }
}

/// The context of the request being handled (its SERVER span), for code
/// that starts spans or hands the trace on (`propagation::environment_for`).
pub fn current_context() -> Context {
    Context::current()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tower::ServiceExt;

    use super::*;
    use crate::telemetry::spans::testing::Collected;

    /// The span id current in the handler, as the handler saw it.
    async fn current_span_id() -> String {
        current_context().span().span_context().span_id().to_string()
    }

    #[tokio::test]
    async fn handlers_run_inside_the_request_span_and_5xx_marks_it_failed() {
        let collected = Collected::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(collected.clone()).build();
        let layer = HttpTelemetryLayer { tracer: Arc::new(BoxedTracer::new(Box::new(provider.tracer("test")))) };
        let app = Router::new()
            .route("/teams/{team}", get(current_span_id))
            .route("/boom", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
            .layer(layer);

        let response = app.clone().oneshot(Request::get("/teams/main").body(Body::empty()).unwrap()).await.unwrap();
        let seen_in_handler =
            String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        app.oneshot(Request::get("/boom").body(Body::empty()).unwrap()).await.unwrap();

        let spans = collected.0.lock().unwrap().clone();
        let team = spans.iter().find(|s| s.name == "GET /teams/{team}").expect("the route's span");
        assert_eq!(team.span_context.span_id().to_string(), seen_in_handler);
        assert_eq!(team.span_kind, SpanKind::Server);
        assert_eq!(team.status, Status::Unset);
        let boom = spans.iter().find(|s| s.name == "GET /boom").expect("the failing route's span");
        assert!(matches!(boom.status, Status::Error { .. }));
        assert!(boom.attributes.contains(&KeyValue::new("error.type", "500")));
        assert!(boom.attributes.contains(&KeyValue::new("http.response.status_code", 500)));
    }
}
