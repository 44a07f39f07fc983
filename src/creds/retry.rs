//! Retries of a lookup (`--secret-retry-attempts`, `--secret-retry-interval`):
//! only a transient error is tried again; a refusal or "not found" is final.

use std::future::Future;
use std::time::Duration;

use super::LookupError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOptions {
    /// How many times a lookup is tried in all (at least once).
    pub attempts: u32,
    /// How long to wait between two tries.
    pub interval: Duration,
}

impl Default for RetryOptions {
    fn default() -> RetryOptions {
        RetryOptions { attempts: 5, interval: Duration::from_secs(1) }
    }
}

impl RetryOptions {
    /// Runs `attempt` until it answers, fails for good, or the attempts are spent.
    pub async fn run<T, F, Fut>(&self, mut attempt: F) -> Result<T, LookupError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, LookupError>>,
    {
        let mut tried = 1;
        loop {
            match attempt().await {
                Err(error) if error.is_transient() && tried < self.attempts => {
                    tracing::debug!(attempt = tried, error = %error, "credential lookup failed; retrying");
                    tried += 1;
                    tokio::time::sleep(self.interval).await;
                }
                answer => return answer,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn transient() -> LookupError {
        LookupError::Transient { manager: "test", source: "connection refused".into() }
    }

    fn permanent() -> LookupError {
        LookupError::Permanent { manager: "test", source: "permission denied".into() }
    }

    const QUICK: RetryOptions = RetryOptions { attempts: 3, interval: Duration::from_millis(1) };

    #[tokio::test]
    async fn transient_errors_are_retried_until_the_attempts_are_spent() {
        let tries = AtomicU32::new(0);
        let answer: Result<(), _> = QUICK
            .run(|| async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(transient())
            })
            .await;
        assert!(answer.unwrap_err().is_transient());
        assert_eq!(tries.load(Ordering::SeqCst), 3);

        let tries = AtomicU32::new(0);
        let answer = QUICK
            .run(|| async {
                match tries.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(transient()),
                    _ => Ok("value"),
                }
            })
            .await;
        assert_eq!(answer.unwrap(), "value");
    }

    #[tokio::test]
    async fn a_permanent_error_is_not_retried() {
        let tries = AtomicU32::new(0);
        let answer: Result<(), _> = QUICK
            .run(|| async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(permanent())
            })
            .await;
        assert!(!answer.unwrap_err().is_transient());
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
