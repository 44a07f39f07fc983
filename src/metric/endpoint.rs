//! The Prometheus listener (`--prometheus-bind-ip`/`--prometheus-bind-port`):
//! `/metrics` on its own port, as Concourse serves it. OpenMetrics (with
//! exemplars) when the scraper accepts it, the classic text format otherwise.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Where to serve `/metrics` and what every series carries.
#[derive(Debug, Clone)]
pub struct PrometheusOptions {
    pub bind: SocketAddr,
    /// `--metrics-attribute` pairs, added to every series.
    pub constant_labels: Vec<(String, String)>,
}

/// A running `/metrics` listener.
pub struct MetricsEndpoint {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl MetricsEndpoint {
    pub async fn start(options: &PrometheusOptions) -> std::io::Result<MetricsEndpoint> {
        let listener = TcpListener::bind(options.bind).await?;
        let addr = listener.local_addr()?;
        let registry = Arc::new(super::prometheus().registry(&options.constant_labels));
        let app = Router::new().route("/metrics", get(scrape)).with_state(registry);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(MetricsEndpoint { addr, stop, task })
    }

    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)?
    }
}

async fn scrape(State(registry): State<Arc<Registry>>, headers: HeaderMap) -> Response {
    let (content_type, encoded) = if accepts_openmetrics(&headers) {
        let mut body = String::new();
        (OPENMETRICS_CONTENT_TYPE, text::encode(&mut body, &registry).map(|()| body))
    } else {
        let mut body = String::new();
        (prometheus_text::CONTENT_TYPE, prometheus_text::encode(&mut body, &registry).map(|()| body))
    };
    match encoded {
        Ok(body) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics").into_response(),
    }
}

fn accepts_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("application/openmetrics-text"))
}
