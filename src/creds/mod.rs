//! Credential managers: where `((vars))` of pipelines get their secret
//! values. Every manager answers the same question (the value of a var for
//! a team and pipeline); the engine resolves every var of a document before
//! interpolating it, so lookups may be remote and slow.

mod dummy;

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

pub use dummy::Dummy;

use crate::config::vars::VarRef;
use crate::telemetry::spans::CredsLookup;

pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<Value>, String>> + Send + 'a>>;

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
) -> Result<Option<Value>, String> {
    let span = CredsLookup { manager: manager.name(), secret_path: &var.path, cache_hit: false }.start();
    let asked = std::time::Instant::now();
    let found = manager.lookup(team, pipeline, var).await;
    crate::metric::CredsLookedUp { manager: manager.name(), cache_hit: false, duration: asked.elapsed() }.emit();
    match &found {
        Ok(value) => span.answered(value.is_some()),
        Err(message) => span.failed(message),
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
