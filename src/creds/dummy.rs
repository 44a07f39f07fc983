//! The `dummy` credential manager: fixed values from flags
//! (`--dummy-creds-var KEY:VALUE`) or from a pipeline's `var_sources`
//! (`type: dummy`, `config: {vars: {...}}`). For trying things out and tests.

use serde_json::{Map, Value};

use super::{CredentialManager, LookupFuture, Secret};
use crate::config::vars::VarRef;

/// A `--dummy-creds-var` value without a key before its `:`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be KEY:VALUE")]
pub struct NotKeyValue;

/// A dummy var source whose `config.vars` is something other than a map.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("dummy var source: 'vars' must be a map, got {0}")]
pub struct VarsNotAMap(pub Value);

#[derive(Debug, Clone, Default)]
pub struct Dummy {
    vars: Map<String, Value>,
}

impl Dummy {
    pub fn new(vars: Map<String, Value>) -> Dummy {
        Dummy { vars }
    }

    /// Parses `KEY:VALUE` as the flag takes it.
    pub fn parse_flag(value: &str) -> Result<(String, String), NotKeyValue> {
        value
            .split_once(':')
            .filter(|(key, _)| !key.is_empty())
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .ok_or(NotKeyValue)
    }

    /// A pipeline var source of type dummy: `config.vars` holds the values.
    pub fn from_var_source(config: &Value) -> Result<Dummy, VarsNotAMap> {
        match config.get("vars") {
            Some(Value::Object(vars)) => Ok(Dummy::new(vars.clone())),
            None | Some(Value::Null) => Ok(Dummy::default()),
            Some(other) => Err(VarsNotAMap(other.clone())),
        }
    }
}

impl CredentialManager for Dummy {
    fn name(&self) -> &'static str {
        "dummy"
    }

    fn lookup<'a>(&'a self, _team: &'a str, _pipeline: Option<&'a str>, var: &'a VarRef) -> LookupFuture<'a> {
        Box::pin(async move { Ok(self.vars.get(&var.path).cloned().map(Secret::new)) })
    }

    /// Configured when it holds vars; its health check is a no-op, as Concourse's.
    fn describe(&self) -> Option<Value> {
        (!self.vars.is_empty()).then(|| serde_json::json!({ "health": { "method": "noop" } }))
    }
}
