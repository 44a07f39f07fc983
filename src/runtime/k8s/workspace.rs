//! A build's workspace: a claim of its own (`atc-build-{id}`, made from
//! `--kubernetes-storage-class` and `--kubernetes-workspace-size`) held by
//! a small pod of the same name, as Tekton's affinity assistant does. The
//! steps of the build mount subPaths of the claim and must run on that
//! pod's node (required pod affinity on `kubernetes.io/hostname`), so the
//! claim can be ReadWriteOnce; the pod is also where the build's artifacts
//! are handled. Artifacts on the claim are named `ws{id}_...`, so that
//! their place is known from their name alone.
//!
//! Check steps, steps outside a build and uploads stay on the shared claim:
//! a claim and a pod for every check would cost more than the check.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use opentelemetry::Context;
use serde_json::{Value, json};

use super::pod::MANAGED_BY;
use super::store::ArtifactStore;
use super::{GONE_WITHIN, K8sRuntime, api, error_type, invalid_pod, usable};
use crate::runtime::RuntimeError;
use crate::telemetry::spans::{PodInterval, PodSpan, PodStage};

const ROLE_LABEL: &str = "concourse.ci/role";
const ROLE: &str = "build-workspace";
const BUILD_LABEL: &str = "concourse.ci/build-id";
/// How often a claim's phase is read while it binds.
const BIND_POLL: Duration = Duration::from_millis(200);

/// The name of the build's claim and of the pod that holds it.
pub fn claim_name(build: i64) -> String {
    format!("atc-build-{build}")
}

/// The beginning of the name of every artifact on the build's claim.
pub fn artifact_prefix(build: i64) -> String {
    format!("ws{build}_")
}

/// The build whose claim an artifact is on (`None`: the shared claim).
pub fn build_of_artifact(id: &str) -> Option<i64> {
    let (head, _) = id.split_once('_')?;
    head.strip_prefix("ws")?.parse().ok()
}

/// The labels of the build's claim and pod.
fn labels(build: i64) -> BTreeMap<&'static str, String> {
    BTreeMap::from([(ROLE_LABEL, ROLE.to_string()), (BUILD_LABEL, build.to_string())])
}

/// The label selector of every workspace claim and pod.
fn selector() -> String {
    format!("{}={},{ROLE_LABEL}={ROLE}", MANAGED_BY.0, MANAGED_BY.1)
}

/// The build a workspace claim or pod (by its labels) belongs to.
fn build_of(labels: Option<&BTreeMap<String, String>>) -> Option<i64> {
    let labels = labels?;
    (labels.get(ROLE_LABEL).map(String::as_str) == Some(ROLE)).then_some(())?;
    labels.get(BUILD_LABEL)?.parse().ok()
}

/// A step pod of the build runs where the build's workspace pod runs.
pub fn affinity(build: i64) -> Value {
    json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": labels(build)},
        "topologyKey": "kubernetes.io/hostname",
    }]}})
}

/// The build's claim: ReadWriteOnce is enough, its pods share a node.
fn claim(build: i64, size: &str, storage_class: Option<&str>) -> Result<PersistentVolumeClaim, serde_json::Error> {
    let mut spec = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    });
    if let Some(class) = storage_class {
        spec["storageClassName"] = json!(class);
    }
    let mut all_labels = BTreeMap::from([(MANAGED_BY.0, MANAGED_BY.1.to_string())]);
    all_labels.extend(labels(build));
    serde_json::from_value(json!({"metadata": {"name": claim_name(build), "labels": all_labels}, "spec": spec}))
}

/// How the wait for a claim to be bound ended.
struct Bind {
    /// When the wait started and ended.
    started: SystemTime,
    ended: SystemTime,
    /// Whether the claim was bound when first read (no wait to record).
    was_bound: bool,
    result: Result<(), RuntimeError>,
}

/// Waits (up to `timeout`) until the claim `name` is Bound. A claim that
/// is Lost or deleted fails at once; one still Pending at the timeout
/// fails with the last warning Kubernetes gave about it
/// (`ProvisioningFailed`, ...), if any. `WaitForFirstConsumer` classes
/// bind once the workspace pod is scheduled, so that pod is made first.
async fn wait_until_bound(
    claims: &Api<PersistentVolumeClaim>,
    events: &Api<Event>,
    name: &str,
    timeout: Duration,
    cx: &Context,
) -> Bind {
    let started = SystemTime::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut first = true;
    let mut was_bound = false;
    let result = loop {
        let read = api::retrying("get", "persistentvolumeclaims", cx, || claims.get_opt(name)).await;
        let claim = match read {
            Ok(claim) => claim,
            Err(err) => break Err(api::failed(&format!("reading claim {name}"), err)),
        };
        let phase = claim.as_ref().and_then(|c| c.status.as_ref()?.phase.clone()).unwrap_or_default();
        let deleting = claim.as_ref().is_some_and(|c| c.metadata.deletion_timestamp.is_some());
        match phase.as_str() {
            _ if claim.is_none() || deleting => {
                break Err(RuntimeError::Setup(format!("claim {name} was deleted before it was bound")));
            }
            "Bound" => {
                was_bound = first;
                break Ok(());
            }
            "Lost" => break Err(RuntimeError::Setup(format!("claim {name} lost its volume"))),
            _ => {}
        }
        first = false;
        if tokio::time::Instant::now() >= deadline {
            let why = last_warning(events, name, cx).await.unwrap_or_else(|| "no volume was provisioned".into());
            break Err(RuntimeError::TimedOut(format!("claim {name} was not bound within {timeout:?}: {why}")));
        }
        tokio::time::sleep(BIND_POLL).await;
    };
    Bind { started, ended: SystemTime::now(), was_bound, result }
}

/// The latest Warning Event about the claim, as `Reason: message`.
async fn last_warning(events: &Api<Event>, name: &str, cx: &Context) -> Option<String> {
    let params = ListParams::default().fields(&format!("involvedObject.name={name},type=Warning"));
    let listed = api::retrying("list", "events", cx, || events.list(&params)).await.ok()?;
    let latest = listed.items.into_iter().max_by_key(|e| e.last_timestamp.clone().map(|t| t.0))?;
    Some(format!("{}: {}", latest.reason.unwrap_or_default(), latest.message.unwrap_or_default()))
}

/// A build's workspace as the runtime makes, finds and removes it.
impl K8sRuntime {
    /// The store of the build's own claim, once bound. With `span` (a step
    /// of the build starts), the claim is made if missing and the wait for
    /// it to be bound is `k8s.pvc.bind` under the step's pod; without, a
    /// missing claim means the build's files are gone, and the store's
    /// workspace pod runs when it is returned.
    pub(super) async fn build_store(&self, build: i64, span: Option<&PodSpan>) -> Result<ArtifactStore, RuntimeError> {
        if let Some(store) = self.running_build_store(build).await {
            return Ok(store);
        }
        let name = claim_name(build);
        let cx = span.map(PodSpan::context).unwrap_or_default();
        match span {
            Some(_) => self.create_workspace_claim(build, &cx).await?,
            None => {
                let read = api::retrying("get", "persistentvolumeclaims", &cx, || self.claims.get_opt(&name)).await;
                if read.map_err(|err| api::failed(&format!("reading claim {name}"), err))?.is_none() {
                    return Err(RuntimeError::Setup(format!("build {build}'s claim {name} is gone, and its files")));
                }
            }
        }
        let mut settings = self.settings();
        settings.claim = &name;
        settings.cache_claim = None;
        // Made before the claim is awaited: a WaitForFirstConsumer class binds once it is scheduled.
        let store = self.created_helper(&name, || super::pod::helper_pod(&name, labels(build), &settings)).await?;
        let events = Api::namespaced(self.pods.clone().into_client(), &self.options.namespace);
        let timeout = self.options.pod_scheduling_timeout;
        let bind = wait_until_bound(&self.claims, &events, &name, timeout, &cx).await;
        if let Some(span) = span.filter(|_| !bind.was_bound) {
            let failure = bind.result.as_ref().err().map(error_type);
            let stage = PodStage::PvcBind { claim: &name };
            span.record(PodInterval { stage, start: bind.started, end: bind.ended, failure });
        }
        bind.result?;
        if span.is_none() {
            // Artifacts are moved by exec into the workspace pod, so it must
            // run. A starting step needs it only scheduled, which its pod
            // affinity waits for: the two pods start side by side.
            self.until_running(&name).await?;
        }
        Ok(store)
    }

    /// The store of the build's own claim if its workspace pod runs.
    pub(super) async fn running_build_store(&self, build: i64) -> Option<ArtifactStore> {
        self.watch.ready().await;
        let name = claim_name(build);
        let running = self.watch.get(&name).as_deref().is_some_and(usable);
        running.then(|| ArtifactStore { helper: name, ..self.store.clone() })
    }

    /// Makes the build's claim; one still going (its build ended and was
    /// reaped, and the build id came round again) is awaited first.
    async fn create_workspace_claim(&self, build: i64, cx: &Context) -> Result<(), RuntimeError> {
        let name = claim_name(build);
        let claim =
            claim(build, &self.options.workspace_size, self.options.storage_class.as_deref()).map_err(invalid_pod)?;
        let deadline = tokio::time::Instant::now() + GONE_WITHIN;
        loop {
            let params = PostParams::default();
            let created =
                api::retrying("create", "persistentvolumeclaims", cx, || self.claims.create(&params, &claim)).await;
            match created {
                Ok(_) => return Ok(()),
                Err(err) if api::status_code(&err) == Some(409) => {}
                Err(err) => return Err(api::failed(&format!("creating claim {name}"), err)),
            }
            let read = api::retrying("get", "persistentvolumeclaims", cx, || self.claims.get_opt(&name)).await;
            let existing = read.map_err(|err| api::failed(&format!("reading claim {name}"), err))?;
            if existing.is_some_and(|claim| claim.metadata.deletion_timestamp.is_none()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RuntimeError::Unavailable(format!("claim {name} is being deleted and still there")));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The builds that have a claim of their own (or its pod).
    pub(super) async fn workspace_builds(&self) -> Result<Vec<i64>, RuntimeError> {
        let params = ListParams::default().labels(&selector());
        let listed = api::retrying("list", "persistentvolumeclaims", &Context::new(), || self.claims.list(&params))
            .await
            .map_err(|err| api::failed("listing build claims", err))?;
        self.watch.ready().await;
        let claims = listed.items.into_iter().map(|claim| claim.metadata.labels);
        let pods = self.watch.all().into_iter().map(|pod| pod.metadata.labels.clone());
        let builds: BTreeSet<i64> = claims.chain(pods).filter_map(|labels| build_of(labels.as_ref())).collect();
        Ok(builds.into_iter().collect())
    }

    /// Deletes the build's workspace pod and claim (the claim goes once
    /// the pods that mount it have).
    pub(super) async fn remove_workspace(&self, build: i64) -> Result<(), RuntimeError> {
        let name = claim_name(build);
        self.delete(&name, Duration::ZERO).await;
        let params = DeleteParams::default();
        match api::retrying("delete", "persistentvolumeclaims", &Context::new(), || self.claims.delete(&name, &params))
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if api::status_code(&err) == Some(404) => Ok(()),
            Err(err) => Err(api::failed(&format!("deleting claim {name}"), err)),
        }
    }

    pub(super) fn workspace_pods(&self) -> usize {
        self.watch.all().iter().filter(|pod| build_of(pod.metadata.labels.as_ref()).is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_on_a_builds_claim_are_known_by_name() {
        assert_eq!(build_of_artifact(&format!("{}b12-task-abc_0", artifact_prefix(12))), Some(12));
        assert_eq!(build_of_artifact("upload_0a1b"), None);
        assert_eq!(build_of_artifact("b12-task-abc_0"), None);
        assert_eq!(build_of_artifact("wsx_0"), None);
    }

    #[test]
    fn a_workspace_is_found_by_its_labels() {
        let labels: BTreeMap<String, String> = labels(7).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(build_of(Some(&labels)), Some(7));
        let step = BTreeMap::from([(BUILD_LABEL.to_string(), "7".to_string())]);
        assert_eq!(build_of(Some(&step)), None);
    }
}
