//! The HTTP client of the OTLP HTTP/protobuf exporter and of the Google
//! token flow: hyper with rustls (public and system roots). Requests run on
//! the export runtime, whoever awaits them.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use tokio::runtime::Handle;

/// Collectors answer an export with a few bytes; anything this large is not one.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ExportHttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    runtime: Handle,
    timeout: Duration,
}

impl ExportHttpClient {
    pub fn new(runtime: &Handle, timeout: Duration) -> ExportHttpClient {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        // Private CAs in the system store too, as Concourse (Go) trusts them.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
        let https = match tls {
            Ok(tls) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls),
            // Cannot happen with ring's provider; keep plain HTTP working if it did.
            Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots(),
        }
        .https_or_http()
        .enable_http1()
        .build();
        let client = {
            let _runtime = runtime.enter();
            Client::builder(TokioExecutor::new()).build(https)
        };
        ExportHttpClient { client, runtime: runtime.clone(), timeout }
    }

    /// Sends `request` and reads the whole response, within the client's timeout.
    pub async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, Full::new(body));
        let client = self.client.clone();
        let exchange = async move {
            let response = client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES).collect().await?.to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, body))
        };
        let timeout = self.timeout;
        let running = self.runtime.spawn(async move {
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}").into()))
        });
        running.await?
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        self.send(request).await
    }
}
