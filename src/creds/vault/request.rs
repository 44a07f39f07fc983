//! Each request to Vault inside a CLIENT span under the current lookup.

use std::future::Future;

use opentelemetry::trace::FutureExt;
use vaultrs::error::ClientError;

use crate::creds::endpoint::Endpoint;
use crate::telemetry::spans::BackendRequest;

/// Runs `request` in a span named `operation` (never with a secret in it).
pub async fn traced<T>(
    endpoint: &Endpoint,
    operation: &str,
    method: &'static str,
    request: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    let span =
        BackendRequest { operation, method, server_address: &endpoint.host, server_port: endpoint.port, rpc: None }
            .start();
    let answer = request.with_current_context().await;
    match &answer {
        Ok(_) => span.ended(Some(200), None),
        Err(ClientError::APIError { code, .. }) if *code == 404 => span.ended(Some(404), None),
        Err(ClientError::APIError { code, .. }) => span.ended(Some(*code), Some(&format!("status {code}"))),
        Err(error) => span.ended(None, Some(&error.to_string())),
    }
    answer
}
