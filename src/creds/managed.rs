//! A credential manager as builds use it: behind the secret cache and the
//! retries, bounded by its query timeout, and every lookup traced and
//! counted. Written once for every manager.

use std::sync::Arc;
use std::time::Instant;

use opentelemetry::trace::FutureExt;

use super::cache::{CacheKey, SecretCache};
use super::{CacheOptions, CredentialManager, LookupError, RetryOptions, Secret};
use crate::config::vars::VarRef;
use crate::telemetry::spans::CredsLookup;

/// The `--secret-cache-*` and `--secret-retry-*` flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecretPolicy {
    pub cache: CacheOptions,
    pub retry: RetryOptions,
}

pub struct Managed {
    manager: Arc<dyn CredentialManager>,
    cache: SecretCache,
    retry: RetryOptions,
}

impl Managed {
    pub fn new(manager: Arc<dyn CredentialManager>, policy: SecretPolicy) -> Managed {
        Managed { manager, cache: SecretCache::new(policy.cache), retry: policy.retry }
    }

    pub fn manager(&self) -> &dyn CredentialManager {
        self.manager.as_ref()
    }

    /// Looks `var` (without fields) up, inside a `creds.lookup` span under
    /// the current step or check, from the cache when it remembers it.
    /// The span and the metrics name the var, never its value.
    pub async fn lookup(
        &self,
        team: &str,
        pipeline: Option<&str>,
        var: &VarRef,
    ) -> Result<Option<Secret>, LookupError> {
        let name = self.manager.name();
        let asked = Instant::now();
        let key = CacheKey { team: team.to_string(), pipeline: pipeline.map(str::to_string), path: var.path.clone() };
        if let Some(remembered) = self.cache.get(&key) {
            let span = CredsLookup { manager: name, secret_path: &var.path, cache_hit: true }.start();
            let traced = span.span_context();
            crate::metric::CredsLookedUp { manager: name, cache_hit: true, duration: asked.elapsed(), span: &traced }
                .emit();
            span.answered(remembered.is_some());
            return Ok(remembered);
        }
        let span = CredsLookup { manager: name, secret_path: &var.path, cache_hit: false }.start();
        // The manager's requests to its store become the span's children.
        // Why the last try failed, so that a timeout can say more than that.
        let last = std::sync::Mutex::new(None);
        let attempt = || async {
            let answer = self.manager.lookup(team, pipeline, var).await;
            if let Err(error) = &answer {
                *last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(error.to_string());
            }
            answer
        };
        let tries = self.retry.run(attempt).with_context(span.context());
        let found = match self.manager.query_timeout() {
            Some(timeout) => tokio::time::timeout(timeout, tries).await.unwrap_or_else(|_| {
                let last = last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
                Err(LookupError::TimedOut { manager: name, timeout, last })
            }),
            None => tries.await,
        };
        let traced = span.span_context();
        crate::metric::CredsLookedUp { manager: name, cache_hit: false, duration: asked.elapsed(), span: &traced }
            .emit();
        match &found {
            Ok(answer) => {
                span.answered(answer.is_some());
                self.cache.put(key, answer.clone());
            }
            Err(error) => span.failed(&error.to_string()),
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::creds::LookupFuture;

    /// Has `present`; cannot reach its store for `flaky`; may not read
    /// `forbidden`; hangs on `slow`. Counts what it is asked.
    #[derive(Default)]
    struct Store {
        asked: AtomicU32,
    }

    impl CredentialManager for Store {
        fn name(&self) -> &'static str {
            "store"
        }

        fn lookup<'a>(&'a self, _team: &'a str, _pipeline: Option<&'a str>, var: &'a VarRef) -> LookupFuture<'a> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match var.path.as_str() {
                    "present" => Ok(Some(Secret::new(json!("value")))),
                    "flaky" => Err(LookupError::Transient { manager: "store", source: "connection refused".into() }),
                    "forbidden" => Err(LookupError::Permanent { manager: "store", source: "permission denied".into() }),
                    "slow" => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok(None)
                    }
                    _ => Ok(None),
                }
            })
        }

        fn query_timeout(&self) -> Option<Duration> {
            Some(Duration::from_millis(200))
        }
    }

    fn managed(cache: bool) -> (Arc<Store>, Managed) {
        let store = Arc::new(Store::default());
        let policy = SecretPolicy {
            cache: CacheOptions { enabled: cache, ..CacheOptions::default() },
            retry: RetryOptions { attempts: 3, interval: Duration::from_millis(1) },
        };
        (store.clone(), Managed::new(store, policy))
    }

    async fn look_up(managed: &Managed, path: &str) -> Result<Option<Secret>, LookupError> {
        managed.lookup("main", Some("pipeline"), &VarRef::parse(path).unwrap()).await
    }

    #[tokio::test]
    async fn a_missing_var_an_unreachable_manager_and_a_refusal_are_told_apart_and_retried_by_kind() {
        let (store, managed) = managed(false);
        assert_eq!(look_up(&managed, "present").await.unwrap(), Some(Secret::new(json!("value"))));
        assert_eq!(look_up(&managed, "missing").await.unwrap(), None);
        store.asked.store(0, Ordering::SeqCst);
        let unreachable = look_up(&managed, "flaky").await.unwrap_err();
        assert!(unreachable.is_transient());
        assert_eq!(unreachable.to_string(), "the store credential manager is unavailable: connection refused");
        assert_eq!(store.asked.swap(0, Ordering::SeqCst), 3, "tried as often as allowed");
        let refused = look_up(&managed, "forbidden").await.unwrap_err();
        assert_eq!(refused.to_string(), "the store credential manager refused the lookup: permission denied");
        assert_eq!(store.asked.load(Ordering::SeqCst), 1, "a refusal is final");
    }

    #[tokio::test]
    async fn a_timeout_says_why_the_last_try_failed() {
        let (_, managed) = managed(false);
        let managed =
            Managed { retry: RetryOptions { attempts: 1000, interval: Duration::from_millis(50) }, ..managed };
        let error = look_up(&managed, "flaky").await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "the store credential manager did not answer within 200ms \
             (last try: the store credential manager is unavailable: connection refused)"
        );
    }

    #[tokio::test]
    async fn a_slow_manager_times_out() {
        let (_, managed) = managed(false);
        let asked = Instant::now();
        let error = look_up(&managed, "slow").await.unwrap_err();
        assert!(asked.elapsed() < Duration::from_secs(2));
        assert_eq!(error.to_string(), "the store credential manager did not answer within 200ms");
    }

    #[tokio::test]
    async fn the_cache_answers_the_second_lookup_found_or_not() {
        let (store, managed) = managed(true);
        for _ in 0..2 {
            look_up(&managed, "present").await.unwrap();
            look_up(&managed, "missing").await.unwrap();
        }
        assert_eq!(store.asked.load(Ordering::SeqCst), 2);
        let (store, uncached) = self::managed(false);
        look_up(&uncached, "present").await.unwrap();
        look_up(&uncached, "present").await.unwrap();
        assert_eq!(store.asked.load(Ordering::SeqCst), 2);
    }
}
