//! What a running build shares between its steps: who it is, where it
//! writes events, the versions its steps produced, and the scopes of
//! artifacts and local vars.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::event::{BuildEvent, Origin};
use super::event_log::EventLog;
use super::exec::{Outcome, StepContext, run};
use super::journal::{FinishedStep, Journal, LeafEnds, RecordedOutcome, RecordedVersion, Resume};
use super::plan::Plan;
use super::redaction::Redactor;
use super::span_facts;
use crate::config::vars::{self, InterpolationError, InvalidVarRef, VarRef};
use crate::creds::{BuildCredentials, ResolveError};
use crate::db::{Db, StepRecord};
use crate::runtime::{Artifact, Runtime, StepHandle};
use crate::telemetry::spans;

/// Why a value's `((vars))` could not be filled in.
#[derive(Debug, thiserror::Error)]
pub enum VarsError {
    #[error(transparent)]
    InvalidReference(#[from] InvalidVarRef),
    /// A credential manager could not answer, or the source is unknown.
    #[error(transparent)]
    Lookup(#[from] ResolveError),
    /// Vars no credential manager has, as Concourse names them.
    #[error("{}", .0.iter().map(|name| format!("undefined variable: (({name}))")).collect::<Vec<_>>().join(", "))]
    Undefined(Vec<String>),
    #[error(transparent)]
    Interpolation(#[from] InterpolationError),
}

/// Facts about a build that steps pass on (to resource scripts, in URLs, ...).
#[derive(Debug, Clone, Default)]
pub struct BuildInfo {
    pub id: i64,
    pub name: String,
    pub team_id: i64,
    pub team_name: String,
    pub pipeline_id: Option<i64>,
    pub pipeline_name: Option<String>,
    pub pipeline_instance_vars: Option<Value>,
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

/// Where a build's `((vars))` come from: atc's credential manager and the
/// pipeline's `var_sources`, each var looked up once per build.
pub type Credentials = Arc<BuildCredentials>;

pub struct BuildState {
    pub info: BuildInfo,
    pub db: Db,
    pub runtime: Arc<dyn Runtime>,
    pub events: EventLog,
    pub credentials: Credentials,
    /// Cancelled when the build is aborted.
    pub abort: CancellationToken,
    /// What hooks that must outlive an abort run under; cancelled only at shutdown.
    pub hook_cancel: CancellationToken,
    versions: Mutex<HashMap<String, FetchedVersion>>,
    timed_out: AtomicBool,
    /// Every artifact the build's steps produced, released when it ends.
    produced: Mutex<Vec<Artifact>>,
    /// Exit statuses of step processes by plan id.
    exit_statuses: Mutex<HashMap<String, i32>>,
    /// What the build's steps did before it was taken up again (empty for
    /// a build that starts now).
    journal: Journal,
    /// The atc node that ran the build before, when it was taken over.
    previous_owner: Option<String>,
    /// Leaf steps running now, and what they will record when they end.
    leaves: LeafEnds,
}

impl BuildState {
    pub fn new(
        info: BuildInfo,
        db: Db,
        runtime: Arc<dyn Runtime>,
        events: EventLog,
        credentials: Credentials,
        resumed: Option<(Journal, Option<String>)>,
    ) -> BuildState {
        let (journal, previous_owner) = resumed.unwrap_or_default();
        BuildState {
            info,
            db,
            runtime,
            events,
            credentials,
            abort: CancellationToken::new(),
            hook_cancel: CancellationToken::new(),
            versions: Mutex::new(HashMap::new()),
            timed_out: AtomicBool::new(false),
            produced: Mutex::new(Vec::new()),
            exit_statuses: Mutex::new(HashMap::new()),
            journal,
            previous_owner,
            leaves: LeafEnds::default(),
        }
    }

    /// Makes a step's new artifact visible in `scope` under `name`; it
    /// lives until the build ends.
    pub fn register_artifact(&self, plan_id: &str, scope: &Scope, name: &str, artifact: Artifact) {
        self.produced.lock().unwrap_or_else(|p| p.into_inner()).push(artifact.clone());
        self.leaves.update(plan_id, |end| end.finished.artifacts.push((name.to_string(), artifact.id.clone())));
        scope.register_artifact(name, artifact);
    }

    /// Where the step stood when the build was taken up again.
    pub fn resume(&self, plan_id: &str) -> Resume {
        self.journal.resume(plan_id)
    }

    /// The node that ran the build before it was taken over, for messages.
    pub fn previous_owner(&self) -> Option<&str> {
        self.previous_owner.as_deref()
    }

    /// Emits a step's opening event (`initialize-*`, `start-*`, ...), unless
    /// it was emitted before the build was taken up again.
    pub fn announce(&self, plan_id: &str, event: BuildEvent) {
        if !matches!(self.resume(plan_id), Resume::Started(_)) {
            self.events.emit(event);
        }
    }

    /// Emits a step's closing event, with its result when it is a leaf.
    pub fn emit_closing(&self, plan_id: &str, event: BuildEvent) {
        let mut pending = Some(event);
        self.leaves.update(plan_id, |end| end.events.extend(pending.take()));
        if let Some(event) = pending {
            self.events.emit(event);
        }
    }

    /// A leaf step begins: its closing events and result are gathered.
    pub fn begin_leaf(&self, plan_id: &str) {
        self.leaves.begin(plan_id);
    }

    /// The runtime step `handle` exited for the leaf `plan_id`: it is
    /// stopped once the leaf's result is stored.
    pub fn keep_until_recorded(&self, plan_id: &str, handle: StepHandle) {
        let mut pending = Some(handle);
        self.leaves.update(plan_id, |end| end.handles.extend(pending.take()));
        if let Some(handle) = pending {
            tracing::warn!(step = %handle, "a step's process ended outside of its step");
        }
    }

    /// A leaf step ended: its closing events are stored together with its
    /// result (when `recorded` and it finished), then its runtime steps are
    /// stopped. A crash before the store leaves the step to be attached to
    /// again; after it, to be skipped.
    pub async fn end_leaf(&self, plan_id: &str, outcome: &Outcome, recorded: bool) {
        let mut end = self.leaves.take(plan_id);
        let finished = RecordedOutcome::of(outcome).filter(|_| recorded).map(|outcome| {
            end.finished.outcome = outcome;
            end.finished.exit_status = self.exit_status(plan_id);
            let result = serde_json::to_string(&end.finished).unwrap_or_default();
            StepRecord::Finished { plan_id: plan_id.to_string(), result }
        });
        self.events.write(end.events, finished.into_iter().collect());
        if end.handles.is_empty() {
            return;
        }
        self.events.flush().await;
        if self.events.lease_lost() {
            // Unrecorded here, the step is the new owner's to attach to.
            return;
        }
        for handle in end.handles {
            if let Err(err) = self.runtime.stop(&handle, std::time::Duration::ZERO).await {
                tracing::warn!(step = %handle, error = %err, "cannot stop a finished step");
            }
        }
    }

    /// Puts back what a finished step left the build (when it is taken up
    /// again) and answers how it ended.
    pub fn restore(&self, plan_id: &str, scope: &Scope, finished: &FinishedStep) -> Outcome {
        for (name, id) in &finished.artifacts {
            self.register_artifact(plan_id, scope, name, Artifact { id: id.clone() });
        }
        if let Some(version) = &finished.version {
            self.record_version(
                plan_id,
                FetchedVersion { version: version.version.clone(), metadata: version.metadata.clone() },
            );
        }
        if let Some(code) = finished.exit_status {
            self.record_exit_status(plan_id, code);
        }
        finished.outcome.outcome()
    }

    /// Hands the build's artifacts back to the runtime, except those
    /// `fly execute` may still download (they expire with their record).
    pub async fn release_artifacts(&self) {
        let produced = std::mem::take(&mut *self.produced.lock().unwrap_or_else(|p| p.into_inner()));
        let kept: HashSet<String> = match self.db.build_artifacts(self.info.id).await {
            Ok(records) => records.into_iter().map(|record| record.handle).collect(),
            Err(err) => {
                // Releasing blind could delete a download a user still needs.
                tracing::warn!(build = self.info.id, error = %err, "cannot tell which artifacts to keep");
                return;
            }
        };
        let released: Vec<Artifact> = produced.into_iter().filter(|a| !kept.contains(&a.id)).collect();
        if let Err(err) = self.runtime.release(released).await {
            tracing::warn!(build = self.info.id, error = %err, "cannot release the build's artifacts");
        }
    }

    pub fn is_aborted(&self) -> bool {
        self.abort.is_cancelled()
    }

    /// Runs a hook's plan.
    /// Runs a hook's plan inside a `hook {kind}` span where the hooked step sits.
    pub async fn hook(&self, ctx: &StepContext, kind: &'static str, plan: &Plan) -> Outcome {
        let trace = spans::HookSpan { kind }.start(&ctx.trace);
        let outcome = self.redact_outcome(run(plan, &ctx.with_trace(trace.clone())).await);
        spans::end_hook(&trace, span_facts::hook_error(&outcome));
        outcome
    }

    /// Remembers the exit status of a step's process for its span.
    pub fn record_exit_status(&self, plan_id: &str, exit_status: i32) {
        self.exit_statuses.lock().unwrap_or_else(|p| p.into_inner()).insert(plan_id.to_string(), exit_status);
    }

    pub fn exit_status(&self, plan_id: &str) -> Option<i32> {
        self.exit_statuses.lock().unwrap_or_else(|p| p.into_inner()).get(plan_id).copied()
    }

    /// Records a step's error in the build log (with its result, for a leaf).
    pub fn step_error(&self, plan_id: &str, message: &str) {
        let event =
            BuildEvent::Error { origin: Origin::step(plan_id), message: message.to_string(), time: crate::db::now() };
        self.emit_closing(plan_id, event);
    }

    pub fn across_substeps(&self, plan_id: &str, substeps: Vec<Value>) {
        self.events.emit(BuildEvent::AcrossSubsteps {
            origin: Origin::step(plan_id),
            substeps,
            time: crate::db::now(),
        });
    }

    /// The step's name on the runtime: the build, the step's kind and a
    /// digest of its plan id (plan ids are unique within a build, but may
    /// hold characters a pod name cannot), so the same step of the same
    /// build always has the same handle.
    pub fn handle(&self, step_type: &str, plan_id: &str) -> StepHandle {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(plan_id.as_bytes());
        let digest: String = digest.iter().take(6).map(|byte| format!("{byte:02x}")).collect();
        let name = format!("b{}-{step_type}-{digest}", self.info.id);
        StepHandle::parse(&name).unwrap_or_else(|err| unreachable!("a handle made of known parts: {err}"))
    }

    pub fn step_metadata(&self, step_type: &str, step_name: &str) -> crate::runtime::StepMetadata {
        crate::runtime::StepMetadata {
            team: self.info.team_name.clone(),
            pipeline: self.info.pipeline_name.clone(),
            job: self.info.job_name.clone(),
            build_id: Some(self.info.id),
            build_name: Some(self.info.name.clone()),
            step_type: step_type.to_string(),
            step_name: step_name.to_string(),
        }
    }

    /// What a resource script (and a task) learns about the build.
    pub fn build_env(&self) -> crate::resource::BuildEnv {
        crate::resource::BuildEnv {
            build_id: Some(self.info.id),
            build_name: Some(self.info.name.clone()),
            team_name: Some(self.info.team_name.clone()),
            job_name: self.info.job_name.clone(),
            pipeline_name: self.info.pipeline_name.clone(),
            pipeline_instance_vars: self.info.pipeline_instance_vars.clone(),
            external_url: Some(self.info.external_url.clone()),
            created_by: self.info.created_by.clone(),
        }
    }

    pub fn record_timeout(&self) {
        self.timed_out.store(true, Ordering::Relaxed);
    }

    pub fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Relaxed)
    }

    pub fn record_version(&self, plan_id: &str, version: FetchedVersion) {
        let recorded = RecordedVersion { version: version.version.clone(), metadata: version.metadata.clone() };
        self.leaves.update(plan_id, |end| end.finished.version = Some(recorded));
        self.versions.lock().unwrap_or_else(|p| p.into_inner()).insert(plan_id.to_string(), version);
    }

    pub fn version_from(&self, plan_id: &str) -> Option<FetchedVersion> {
        self.versions.lock().unwrap_or_else(|p| p.into_inner()).get(plan_id).cloned()
    }

    /// Interpolates `((vars))` in `value`: local vars (`((.:name))`) from
    /// the scope, `((source:name))` from the pipeline's var sources, the
    /// rest from atc's credential manager. Every var must be defined; the
    /// error names all that are not. Secret values are remembered so the
    /// build's logs never show them.
    pub async fn interpolate(&self, value: &Value, scope: &Scope) -> Result<Value, VarsError> {
        self.interpolate_with(value, scope, &serde_json::Map::new()).await
    }

    /// As [`BuildState::interpolate`], with `extra` vars (a task's `vars:`)
    /// taking precedence over credentials for unsourced names.
    pub async fn interpolate_with(
        &self,
        value: &Value,
        scope: &Scope,
        extra: &serde_json::Map<String, Value>,
    ) -> Result<Value, VarsError> {
        let mut resolved: HashMap<String, Value> = HashMap::new();
        let mut undefined: Vec<String> = Vec::new();
        for name in vars::references(value) {
            let reference = VarRef::parse(&name)?;
            let found = if reference.is_local() {
                scope.local_var(&reference.path)
            } else if reference.source.is_none()
                && let Some(value) = extra.get(&reference.path)
            {
                Some(value.clone())
            } else {
                let pipeline = self.info.pipeline_name.as_deref();
                let value = self.credentials.resolve(&self.info.team_name, pipeline, &reference).await?;
                match &value {
                    Some(value) => self.remember_secret(value),
                    None => undefined.push(name.clone()),
                }
                value
            };
            if let Some(found) = found {
                // Keyed without fields: the interpolation walks into them.
                resolved.insert(VarRef { fields: Vec::new(), ..reference }.to_string(), found);
            }
        }
        if !undefined.is_empty() {
            return Err(VarsError::Undefined(undefined));
        }
        let lookup = |reference: &VarRef| -> Option<Value> {
            resolved.get(&VarRef { fields: Vec::new(), ..reference.clone() }.to_string()).cloned()
        };
        Ok(vars::interpolate(value, &lookup, vars::Undefined::Fail)?)
    }

    /// Keeps a value (a string, or the strings of a map) out of everything
    /// the build records.
    pub fn remember_secret(&self, value: &Value) {
        self.redactor().register(value);
    }

    /// The secrets this build looked up, kept out of everything it records.
    pub fn redactor(&self) -> &Redactor {
        self.events.redactor()
    }

    /// `text` with every remembered secret replaced by `((redacted))`.
    pub fn redact(&self, text: &str) -> String {
        self.redactor().redact(text)
    }

    /// An outcome fit to leave the build (span statuses): its error
    /// message may quote what a step was given.
    pub fn redact_outcome(&self, outcome: Outcome) -> Outcome {
        match outcome {
            Outcome::Errored(message) => Outcome::Errored(self.redact(&message)),
            other => other,
        }
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

    /// Interpolates only local vars (`((.:name))`), leaving the rest for later.
    pub fn interpolate_local(&self, value: &Value) -> Result<Value, InterpolationError> {
        let lookup = |reference: &VarRef| -> Option<Value> {
            if reference.is_local() { self.local_var(&reference.path) } else { None }
        };
        vars::interpolate(value, &lookup, vars::Undefined::Keep)
    }
}
