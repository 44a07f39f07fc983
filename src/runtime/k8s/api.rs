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
pub async fn retrying<T, F, Fut>(verb: &str, resource: &str, parent: &Context, request: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    retrying_for(RETRY_FOR, verb, resource, parent, request).await
}

async fn retrying_for<T, F, Fut>(
    window: Duration,
    verb: &str,
    resource: &str,
    parent: &Context,
    mut request: F,
) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let span = K8sRequest { verb, resource }.start(parent);
    let deadline = tokio::time::Instant::now() + window;
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use kube::core::Status;

    use super::*;

    fn refusal(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure("refused", "Test").with_code(code)))
    }

    #[tokio::test]
    async fn busy_and_failing_servers_are_asked_again_but_refusals_are_final() {
        let sent = AtomicU32::new(0);
        let answer = retrying("get", "pods", &Context::new(), || async {
            match sent.fetch_add(1, Ordering::SeqCst) {
                0 => Err(refusal(429)),
                1 => Err(refusal(503)),
                _ => Ok("pod"),
            }
        })
        .await;
        assert_eq!(answer.unwrap(), "pod");
        assert_eq!(sent.load(Ordering::SeqCst), 3);

        let sent = AtomicU32::new(0);
        let refused = retrying("create", "pods", &Context::new(), || async {
            sent.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(refusal(403))
        })
        .await;
        assert_eq!(status_code(&refused.unwrap_err()), Some(403));
        assert_eq!(sent.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_outage_longer_than_the_retry_window_is_reported_as_unavailable() {
        let window = Duration::from_millis(500);
        let outage =
            retrying_for(window, "get", "pods", &Context::new(), || async { Err::<(), _>(refusal(500)) }).await;
        let err = failed("reading pod p", outage.unwrap_err());
        assert!(err.is_transient() && matches!(err, RuntimeError::Unavailable(_)), "{err:?}");
    }
}
