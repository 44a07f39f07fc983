//! Credential managers: where `((vars))` of pipelines get their secret
//! values. Every manager answers the same question (the value of a var for
//! a team and pipeline); the engine resolves every var of a document before
//! interpolating it, so lookups may be remote and slow.

mod dummy;

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

pub use dummy::{Dummy, NotKeyValue, VarsNotAMap};

use crate::config::vars::VarRef;
use crate::telemetry::spans::CredsLookup;

/// A var a manager does not have is no error: a lookup answers `Ok(None)`
/// and the build names the var as undefined.
pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<Value>, LookupError>> + Send + 'a>>;

/// Why a credential manager could not answer.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The manager could not be reached or did not answer in time (network
    /// failure, a sealed or restarting store, throttling).
    #[error("the {manager} credential manager is unavailable: {source}")]
    Unavailable {
        manager: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The manager answered with a refusal (permission denied, a malformed
    /// secret).
    #[error("the {manager} credential manager refused the lookup: {source}")]
    Refused {
        manager: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl LookupError {
    /// Whether the same lookup may succeed later, so that a build can wait
    /// and retry rather than error.
    pub fn is_transient(&self) -> bool {
        matches!(self, LookupError::Unavailable { .. })
    }
}

pub trait CredentialManager: Send + Sync {
    /// `vault`, `ssm`, `dummy`, ...: the `concourse.creds.manager` of spans.
    fn name(&self) -> &'static str;

    /// The value of `var` for a build of `team` (and `pipeline`), without
    /// its fields (the caller walks into them); `Ok(None)` when undefined.
    fn lookup<'a>(&'a self, team: &'a str, pipeline: Option<&'a str>, var: &'a VarRef) -> LookupFuture<'a>;

    /// How it is set up, for `GET /api/v1/info/creds`: never a secret.
    /// `None` when it is not configured (Concourse lists only configured ones).
    fn describe(&self) -> Option<Value> {
        None
    }
}

/// Looks `var` up in `manager`, inside a `creds.lookup` span (under the
/// current step or check) and counted: every manager gets the same
/// telemetry, which names the var but never holds its value.
pub async fn lookup(
    manager: &dyn CredentialManager,
    team: &str,
    pipeline: Option<&str>,
    var: &VarRef,
) -> Result<Option<Value>, LookupError> {
    let span = CredsLookup { manager: manager.name(), secret_path: &var.path, cache_hit: false }.start();
    let asked = std::time::Instant::now();
    let found = manager.lookup(team, pipeline, var).await;
    crate::metric::CredsLookedUp { manager: manager.name(), cache_hit: false, duration: asked.elapsed() }.emit();
    match &found {
        Ok(value) => span.answered(value.is_some()),
        Err(error) => span.failed(&error.to_string()),
    }
    found
}

/// The manager for atc as a whole: none configured means no secrets.
pub struct NoCredentials;

impl CredentialManager for NoCredentials {
    fn name(&self) -> &'static str {
        "none"
    }

    fn lookup<'a>(&'a self, _team: &'a str, _pipeline: Option<&'a str>, _var: &'a VarRef) -> LookupFuture<'a> {
        Box::pin(async { Ok(None) })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Has `present`; cannot reach its store for `flaky`; may not read `forbidden`.
    struct Store;

    impl CredentialManager for Store {
        fn name(&self) -> &'static str {
            "store"
        }

        fn lookup<'a>(&'a self, _team: &'a str, _pipeline: Option<&'a str>, var: &'a VarRef) -> LookupFuture<'a> {
            Box::pin(async move {
                match var.path.as_str() {
                    "present" => Ok(Some(json!("value"))),
                    "flaky" => {
                        Err(LookupError::Unavailable { manager: self.name(), source: "connection refused".into() })
                    }
                    "forbidden" => {
                        Err(LookupError::Refused { manager: self.name(), source: "permission denied".into() })
                    }
                    _ => Ok(None),
                }
            })
        }
    }

    async fn look_up(path: &str) -> Result<Option<Value>, LookupError> {
        let var = VarRef::parse(path).unwrap();
        lookup(&Store, "main", Some("pipeline"), &var).await
    }

    #[tokio::test]
    async fn a_missing_var_an_unreachable_manager_and_a_refusal_are_told_apart() {
        assert_eq!(look_up("present").await.unwrap(), Some(json!("value")));
        assert_eq!(look_up("missing").await.unwrap(), None);
        let unreachable = look_up("flaky").await.unwrap_err();
        assert!(unreachable.is_transient());
        assert_eq!(unreachable.to_string(), "the store credential manager is unavailable: connection refused");
        let refused = look_up("forbidden").await.unwrap_err();
        assert!(!refused.is_transient());
        assert_eq!(refused.to_string(), "the store credential manager refused the lookup: permission denied");
    }
}
