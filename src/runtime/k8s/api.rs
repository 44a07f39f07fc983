//! Kubernetes API requests: errors the API server may recover from (429,
//! 5xx, a dropped connection, a timeout) are retried with backoff, and
//! never reach a build as a failure unless they last. Each request is a
//! CLIENT span under the pod's span, its retries counted.

use std::future::Future;
use std::time::Duration;

use opentelemetry::Context;

use crate::runtime::RuntimeError;
use crate::telemetry::spans::K8sRequest;

/// How long a request keeps being retried before the runtime is reported
/// unavailable.
const RETRY_FOR: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Whether the same request may succeed later.
pub fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// The status code of an API refusal.
pub fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Sends `request` (`verb` on `resource`, a span under `parent`) until it
/// succeeds, fails for good, or has failed transiently for [`RETRY_FOR`].
pub async fn retrying<T, F, Fut>(verb: &str, resource: &str, parent: &Context, mut request: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let span = K8sRequest { verb, resource }.start(parent);
    let deadline = tokio::time::Instant::now() + RETRY_FOR;
    let mut backoff = FIRST_BACKOFF;
    let mut retries = 0u32;
    loop {
        match request().await {
            Err(err) if is_transient(&err) && tokio::time::Instant::now() + backoff < deadline => {
                retries += 1;
                tracing::debug!(verb, resource, retries, error = %err, "retrying a Kubernetes API request");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Ok(answer) => {
                span.end(Some(success_code(verb)), retries, None);
                return Ok(answer);
            }
            Err(err) => {
                let error = if is_transient(&err) { "unavailable" } else { "refused" };
                span.end(status_code(&err), retries, Some(error));
                return Err(err);
            }
        }
    }
}

/// The status code the API server answers `verb` with when it succeeds.
fn success_code(verb: &str) -> u16 {
    match verb {
        "create" => 201,
        "exec" => 101,
        _ => 200,
    }
}

/// A request that failed for good, as the runtime reports it.
pub fn failed(what: &str, err: kube::Error) -> RuntimeError {
    if is_transient(&err) {
        RuntimeError::Unavailable(format!("{what}: {err}"))
    } else {
        RuntimeError::Setup(format!("{what}: {err}"))
    }
}
