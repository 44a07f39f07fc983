//! The credentials of one build: atc's manager for `((name))`, the
//! pipeline's var sources for `((source:name))`, and what the build has
//! already looked up, so that each var is asked once per build however many
//! steps use it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::OnceCell;

use super::registry::{self, VarSourceError};
use super::{LookupError, Managed, SecretPolicy};
use crate::config::vars::{self, VarRef};

/// Why a var could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown var source '{name}' in (({var}))")]
    UnknownSource { name: String, var: String },
    /// The message names the var and (through the source) the manager.
    #[error("looking up (({var})): {source}")]
    Lookup {
        var: String,
        #[source]
        source: LookupError,
    },
}

/// A pipeline's var source that could not be set up for a build.
#[derive(Debug, thiserror::Error)]
pub enum SourceSetupError {
    #[error(transparent)]
    Config(#[from] VarSourceError),
    #[error("var source '{name}': {source}")]
    Resolve {
        name: String,
        #[source]
        source: ResolveError,
    },
    #[error("var source '{name}': {source}")]
    Interpolation {
        name: String,
        #[source]
        source: vars::InterpolationError,
    },
    #[error("could not resolve inter-dependent var sources: {0}")]
    Cycle(String),
}

/// `None` for atc's own manager, else the var source's name.
type MemoKey = (Option<String>, String);

pub struct BuildCredentials {
    global: Arc<Managed>,
    var_sources: Vec<(String, Arc<Managed>)>,
    looked_up: Mutex<HashMap<MemoKey, Arc<OnceCell<Option<Value>>>>>,
}

impl BuildCredentials {
    /// Only atc's manager: a build outside a pipeline, or one whose var
    /// sources could not be set up.
    pub fn global(global: Arc<Managed>) -> BuildCredentials {
        BuildCredentials { global, var_sources: Vec::new(), looked_up: Mutex::new(HashMap::new()) }
    }

    /// atc's manager and the pipeline's `var_sources` (as stored: a list of
    /// `{name, type, config}`). A source's config may use atc's vars and
    /// other sources' vars; each is set up once those it uses are, so its
    /// config is interpolated from sources set up before it.
    pub async fn for_pipeline(
        global: Arc<Managed>,
        policy: SecretPolicy,
        var_sources: &[Value],
        team: &str,
        pipeline: Option<&str>,
    ) -> Result<BuildCredentials, SourceSetupError> {
        let mut credentials = BuildCredentials::global(global);
        let declared: Vec<(String, String, Value)> = var_sources
            .iter()
            .map(|source| {
                let text = |key: &str| source.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
                (text("name"), text("type"), source.get("config").cloned().unwrap_or(Value::Null))
            })
            .collect();
        let names: Vec<&str> = declared.iter().map(|(name, _, _)| name.as_str()).collect();
        let mut pending: Vec<usize> = (0..declared.len()).collect();
        while !pending.is_empty() {
            let set_up: Vec<&str> = credentials.var_sources.iter().map(|(name, _)| name.as_str()).collect();
            let ready = pending.iter().position(|&index| {
                uses(&declared[index].2)
                    .iter()
                    .all(|used| !names.contains(&used.as_str()) || set_up.contains(&used.as_str()))
            });
            let Some(position) = ready else {
                let stuck: Vec<&str> = pending.iter().map(|&index| declared[index].0.as_str()).collect();
                return Err(SourceSetupError::Cycle(stuck.join(", ")));
            };
            let (name, kind, config) = &declared[pending.remove(position)];
            let config = credentials.interpolate(config, team, pipeline).await.map_err(|error| match error {
                InterpolateError::Resolve(source) => SourceSetupError::Resolve { name: name.clone(), source },
                InterpolateError::Interpolation(source) => {
                    SourceSetupError::Interpolation { name: name.clone(), source }
                }
            })?;
            let manager = registry::from_var_source(name, kind, &config)?;
            credentials.var_sources.push((name.clone(), Arc::new(Managed::new(manager, policy))));
        }
        Ok(credentials)
    }

    /// The value of `var` (its fields are left to the caller), looked up
    /// once per build: later asks, also concurrent ones, get the same answer.
    /// A failed lookup is not remembered, so a later step may try again.
    pub async fn resolve(
        &self,
        team: &str,
        pipeline: Option<&str>,
        var: &VarRef,
    ) -> Result<Option<Value>, ResolveError> {
        let manager = match &var.source {
            None => self.global.clone(),
            Some(source) => match self.var_sources.iter().find(|(name, _)| name == source) {
                Some((_, manager)) => manager.clone(),
                None => {
                    return Err(ResolveError::UnknownSource { name: source.clone(), var: var_name(var) });
                }
            },
        };
        let cell = {
            let mut looked_up = self.looked_up.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            looked_up.entry((var.source.clone(), var.path.clone())).or_default().clone()
        };
        let base = VarRef { fields: Vec::new(), ..var.clone() };
        let answer = cell
            .get_or_try_init(|| async {
                let found = manager.lookup(team, pipeline, &base).await;
                found.map(|secret| secret.map(|secret| secret.value))
            })
            .await
            .map_err(|source| ResolveError::Lookup { var: var_name(&base), source })?;
        Ok(answer.clone())
    }

    /// `value` with its `((vars))` from these credentials, every one defined.
    async fn interpolate(&self, value: &Value, team: &str, pipeline: Option<&str>) -> Result<Value, InterpolateError> {
        let mut resolved: std::collections::BTreeMap<VarRef, Value> = std::collections::BTreeMap::new();
        for name in vars::references(value) {
            let reference = VarRef::parse(&name).map_err(|e| InterpolateError::Interpolation(e.into()))?;
            let base = VarRef { fields: Vec::new(), ..reference };
            if let Some(found) = self.resolve(team, pipeline, &base).await.map_err(InterpolateError::Resolve)? {
                resolved.insert(base, found);
            }
        }
        let lookup = |reference: &VarRef| resolved.get(&VarRef { fields: Vec::new(), ..reference.clone() }).cloned();
        vars::interpolate(value, &lookup, vars::Undefined::Fail).map_err(InterpolateError::Interpolation)
    }
}

enum InterpolateError {
    Resolve(ResolveError),
    Interpolation(vars::InterpolationError),
}

/// The var sources a config uses.
fn uses(config: &Value) -> Vec<String> {
    vars::references(config).iter().filter_map(|name| VarRef::parse(name).ok()?.source).collect()
}

/// `source:path` or `path`, as a pipeline writes it.
fn var_name(var: &VarRef) -> String {
    match &var.source {
        Some(source) => format!("{source}:{}", var.path),
        None => var.path.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::creds::Dummy;

    fn global(vars: Value) -> Arc<Managed> {
        let dummy = Dummy::from_var_source(&json!({ "vars": vars })).unwrap();
        Arc::new(Managed::new(Arc::new(dummy), SecretPolicy::default()))
    }

    async fn resolve(credentials: &BuildCredentials, name: &str) -> Option<Value> {
        credentials.resolve("main", Some("p"), &VarRef::parse(name).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn var_sources_are_set_up_from_the_sources_before_them_whatever_their_order() {
        let sources = [
            json!({ "name": "last", "type": "dummy", "config": { "vars": { "v": "((middle:v))-last" } } }),
            json!({ "name": "middle", "type": "dummy", "config": { "vars": { "v": "((first:v))-((global))" } } }),
            json!({ "name": "first", "type": "dummy", "config": { "vars": { "v": "first" } } }),
        ];
        let credentials = BuildCredentials::for_pipeline(
            global(json!({ "global": "g" })),
            SecretPolicy::default(),
            &sources,
            "main",
            Some("p"),
        )
        .await
        .unwrap();
        assert_eq!(resolve(&credentials, "last:v").await, Some(json!("first-g-last")));
        assert_eq!(resolve(&credentials, "global").await, Some(json!("g")));
        assert_eq!(resolve(&credentials, "last:missing").await, None);
        let unknown = credentials.resolve("main", None, &VarRef::parse("nope:v").unwrap()).await.unwrap_err();
        assert_eq!(unknown.to_string(), "unknown var source 'nope' in ((nope:v))");
    }

    /// Counts what it is asked; answers after a pause, so asks overlap.
    #[derive(Default)]
    struct Counting(std::sync::atomic::AtomicU32);

    impl crate::creds::CredentialManager for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }

        fn lookup<'a>(&'a self, _: &'a str, _: Option<&'a str>, _: &'a VarRef) -> crate::creds::LookupFuture<'a> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Ok(Some(crate::creds::Secret::new(json!("v"))))
            })
        }
    }

    #[tokio::test]
    async fn a_build_asks_for_each_var_once_even_when_its_steps_ask_together() {
        let counting = Arc::new(Counting::default());
        let credentials = BuildCredentials::global(Arc::new(Managed::new(counting.clone(), SecretPolicy::default())));
        let asks = ["token", "token.field", "token", "other"].map(|name| resolve(&credentials, name));
        let answers = futures_util::future::join_all(asks).await;
        assert!(answers.iter().all(|answer| answer == &Some(json!("v"))));
        assert_eq!(counting.0.load(std::sync::atomic::Ordering::SeqCst), 2, "token and other, once each");
    }

    #[tokio::test]
    async fn a_source_of_an_unknown_type_or_a_cycle_is_refused() {
        let unknown = [json!({ "name": "s", "type": "nonesuch", "config": {} })];
        let error =
            BuildCredentials::for_pipeline(global(json!({})), SecretPolicy::default(), &unknown, "main", None).await;
        assert!(error.err().unwrap().to_string().contains("unknown credential manager type: 'nonesuch'"));
        let cycle = [
            json!({ "name": "a", "type": "dummy", "config": { "vars": { "v": "((b:v))" } } }),
            json!({ "name": "b", "type": "dummy", "config": { "vars": { "v": "((a:v))" } } }),
        ];
        let error = BuildCredentials::for_pipeline(global(json!({})), SecretPolicy::default(), &cycle, "main", None)
            .await
            .err()
            .unwrap();
        assert_eq!(error.to_string(), "could not resolve inter-dependent var sources: a, b");
    }
}
