//! Credential managers: where `((vars))` of pipelines get their secret
//! values. Every manager answers the same question (the value of a var for
//! a team and pipeline); the engine resolves every var of a document before
//! interpolating it, so lookups may be remote and slow.
//!
//! A manager only talks to its store. What every manager gets alike lives
//! beside it, once: the cache and retries ([`Managed`]), telemetry, the
//! once-per-build memory of a build's lookups ([`BuildCredentials`]) and the
//! list of manager types a pipeline's `var_sources` may name ([`registry`]).

pub mod aws;
mod build;
mod cache;
pub mod credhub;
mod dummy;
mod endpoint;
pub mod kubernetes;
mod managed;
pub mod registry;
mod retry;
mod template;
pub mod vault;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use build::{BuildCredentials, ResolveError, SourceSetupError};
pub use cache::CacheOptions;
pub use dummy::{Dummy, NotKeyValue, VarsNotAMap};
pub use managed::{Managed, SecretPolicy};
pub use retry::RetryOptions;

use crate::config::vars::VarRef;

/// A secret's value and, when its store says so, when it stops being valid
/// (a lease): the cache keeps it no longer than that.
#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    pub value: Value,
    pub expires_at: Option<Instant>,
}

impl Secret {
    /// A value without an expiry.
    pub fn new(value: Value) -> Secret {
        Secret { value, expires_at: None }
    }
}

/// A var a manager does not have is no error: a lookup answers `Ok(None)`
/// and the build names the var as undefined.
pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<Secret>, LookupError>> + Send + 'a>>;

/// Why a credential manager could not answer. The kind decides retries:
/// only a transient error is tried again.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The manager could not be reached or did not answer in time (network
    /// failure, a sealed or restarting store, throttling).
    #[error("the {manager} credential manager is unavailable: {source}")]
    Transient {
        manager: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The manager answered with a refusal (permission denied, a malformed
    /// secret): asking again would get the same answer.
    #[error("the {manager} credential manager refused the lookup: {source}")]
    Permanent {
        manager: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The whole lookup, retries included, took longer than the manager's
    /// query timeout; `last` is why the last try failed, if one did.
    #[error("the {manager} credential manager did not answer within {timeout:?}{}", last.as_ref().map(|last| format!(" (last try: {last})")).unwrap_or_default())]
    TimedOut { manager: &'static str, timeout: Duration, last: Option<String> },
}

impl LookupError {
    /// A failed lookup of `manager`: [`Transient`](LookupError::Transient)
    /// when asking again may help, else [`Permanent`](LookupError::Permanent).
    pub fn failed(
        manager: &'static str,
        transient: bool,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> LookupError {
        let source = source.into();
        if transient { LookupError::Transient { manager, source } } else { LookupError::Permanent { manager, source } }
    }

    /// Whether the same lookup may succeed later, so that it is tried again.
    pub fn is_transient(&self) -> bool {
        matches!(self, LookupError::Transient { .. })
    }
}

/// Whether an HTTP status from a manager's backend says it may answer
/// later: it failed on its side (5xx) or is throttling (429).
pub fn status_is_transient(status: u16) -> bool {
    status >= 500 || status == 429
}

pub trait CredentialManager: Send + Sync {
    /// `vault`, `ssm`, `dummy`, ...: the `concourse.creds.manager` of spans.
    fn name(&self) -> &'static str;

    /// The value of `var` for a build of `team` (and `pipeline`), without
    /// its fields (the caller walks into them); `Ok(None)` when undefined.
    fn lookup<'a>(&'a self, team: &'a str, pipeline: Option<&'a str>, var: &'a VarRef) -> LookupFuture<'a>;

    /// How long one lookup (with its retries) may take before the step
    /// errors; `None` for managers that never wait on anything.
    fn query_timeout(&self) -> Option<Duration> {
        None
    }

    /// How it is set up, for `GET /api/v1/info/creds`: never a secret.
    /// `None` when it is not configured (Concourse lists only configured ones).
    fn describe(&self) -> Option<Value> {
        None
    }
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
