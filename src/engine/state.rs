//! What a running build shares between its steps: who it is, where it
//! writes events, the versions its steps produced, and the scopes of
//! artifacts and local vars.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::event::{BuildEvent, Origin};
use super::event_log::EventLog;
use super::exec::{Outcome, StepContext, run};
use super::plan::Plan;
use crate::db::Db;
use crate::runtime::{Artifact, Runtime};

/// Facts about a build that steps pass on (to resource scripts, in URLs, ...).
#[derive(Debug, Clone, Default)]
pub struct BuildInfo {
    pub id: i64,
    pub name: String,
    pub team_id: i64,
    pub team_name: String,
    pub pipeline_id: Option<i64>,
    pub pipeline_name: Option<String>,
    pub pipeline_instance_vars: Option<String>,
    pub job_id: Option<i64>,
    pub job_name: Option<String>,
    pub created_by: Option<String>,
    pub external_url: String,
}

/// A version a step produced or fetched, for later steps (`version_from`).
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedVersion {
    pub version: Value,
    pub metadata: Vec<super::event::MetadataField>,
}

pub struct BuildState {
    pub info: BuildInfo,
    pub db: Db,
    pub runtime: Arc<dyn Runtime>,
    pub events: EventLog,
    /// Cancelled when the build is aborted.
    pub abort: CancellationToken,
    /// What hooks that must outlive an abort run under; cancelled only at shutdown.
    pub hook_cancel: CancellationToken,
    versions: Mutex<HashMap<String, FetchedVersion>>,
    timed_out: AtomicBool,
}

impl BuildState {
    pub fn new(info: BuildInfo, db: Db, runtime: Arc<dyn Runtime>, events: EventLog) -> BuildState {
        BuildState {
            info,
            db,
            runtime,
            events,
            abort: CancellationToken::new(),
            hook_cancel: CancellationToken::new(),
            versions: Mutex::new(HashMap::new()),
            timed_out: AtomicBool::new(false),
        }
    }

    pub fn is_aborted(&self) -> bool {
        self.abort.is_cancelled()
    }

    /// Runs a hook's plan.
    pub async fn hook(&self, ctx: &StepContext, _kind: &'static str, plan: &Plan) -> Outcome {
        run(plan, ctx).await
    }

    /// Records a step's error in the build log.
    pub fn step_error(&self, plan_id: &str, message: &str) {
        self.events.emit(BuildEvent::Error {
            origin: Origin::step(plan_id),
            message: message.to_string(),
            time: crate::db::now(),
        });
    }

    pub fn across_substeps(&self, plan_id: &str, substeps: Vec<Value>) {
        self.events.emit(BuildEvent::AcrossSubsteps {
            origin: Origin::step(plan_id),
            substeps,
            time: crate::db::now(),
        });
    }

    pub fn record_timeout(&self) {
        self.timed_out.store(true, Ordering::Relaxed);
    }

    pub fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Relaxed)
    }

    pub fn record_version(&self, plan_id: &str, version: FetchedVersion) {
        self.versions.lock().unwrap_or_else(|p| p.into_inner()).insert(plan_id.to_string(), version);
    }

    pub fn version_from(&self, plan_id: &str) -> Option<FetchedVersion> {
        self.versions.lock().unwrap_or_else(|p| p.into_inner()).get(plan_id).cloned()
    }

    /// Interpolates `((vars))` in `value` from the scope's local vars and the
    /// build's credentials.
    pub fn interpolate(&self, value: &Value, scope: &Scope) -> Result<Value, String> {
        self.interpolate_local(value, scope)
    }

    /// Interpolates only local vars (`((.:name))`), leaving the rest for later.
    pub fn interpolate_local(&self, value: &Value, _scope: &Scope) -> Result<Value, String> {
        Ok(value.clone())
    }
}

/// Artifacts and local vars visible to a step; a child scope sees its
/// parent's but its own additions stay inside it.
#[derive(Default)]
pub struct Scope {
    parent: Option<Arc<Scope>>,
    artifacts: Mutex<BTreeMap<String, Artifact>>,
    local_vars: Mutex<BTreeMap<String, Value>>,
}

impl Scope {
    pub fn root() -> Arc<Scope> {
        Arc::new(Scope::default())
    }

    pub fn child(parent: &Arc<Scope>) -> Arc<Scope> {
        Arc::new(Scope { parent: Some(parent.clone()), ..Scope::default() })
    }

    pub fn register_artifact(&self, name: &str, artifact: Artifact) {
        self.artifacts.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), artifact);
    }

    pub fn artifact(&self, name: &str) -> Option<Artifact> {
        let own = self.artifacts.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned();
        own.or_else(|| self.parent.as_ref().and_then(|p| p.artifact(name)))
    }

    /// Every artifact visible here, nearest scope winning on name clashes.
    pub fn all_artifacts(&self) -> BTreeMap<String, Artifact> {
        let mut all = self.parent.as_ref().map(|p| p.all_artifacts()).unwrap_or_default();
        all.extend(self.artifacts.lock().unwrap_or_else(|p| p.into_inner()).clone());
        all
    }

    pub fn set_local_var(&self, name: &str, value: Value) {
        self.local_vars.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), value);
    }

    pub fn local_var(&self, name: &str) -> Option<Value> {
        let own = self.local_vars.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned();
        own.or_else(|| self.parent.as_ref().and_then(|p| p.local_var(name)))
    }
}
