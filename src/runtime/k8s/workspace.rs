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

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim};
use kube::Api;
use kube::api::ListParams;
use opentelemetry::Context;
use serde_json::{Value, json};

use super::api;
use super::pod::MANAGED_BY;
use crate::runtime::RuntimeError;

const ROLE_LABEL: &str = "concourse.ci/role";
const ROLE: &str = "build-workspace";
const BUILD_LABEL: &str = "concourse.ci/build-id";
/// How often a claim's phase is read while it binds.
const BIND_POLL: Duration = Duration::from_millis(200);

/// The name of the build's claim and of the pod that holds it.
pub fn name(build: i64) -> String {
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
pub fn labels(build: i64) -> BTreeMap<&'static str, String> {
    BTreeMap::from([(ROLE_LABEL, ROLE.to_string()), (BUILD_LABEL, build.to_string())])
}

/// The label selector of every workspace claim and pod.
pub fn selector() -> String {
    format!("{}={},{ROLE_LABEL}={ROLE}", MANAGED_BY.0, MANAGED_BY.1)
}

/// The build a workspace claim or pod (by its labels) belongs to.
pub fn build_of(labels: Option<&BTreeMap<String, String>>) -> Option<i64> {
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
pub fn claim(build: i64, size: &str, storage_class: Option<&str>) -> Result<PersistentVolumeClaim, serde_json::Error> {
    let mut spec = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    });
    if let Some(class) = storage_class {
        spec["storageClassName"] = json!(class);
    }
    let mut all_labels = BTreeMap::from([(MANAGED_BY.0, MANAGED_BY.1.to_string())]);
    all_labels.extend(labels(build));
    serde_json::from_value(json!({"metadata": {"name": name(build), "labels": all_labels}, "spec": spec}))
}

/// How the wait for a claim to be bound ended.
pub struct Bind {
    /// When the wait started and ended.
    pub started: SystemTime,
    pub ended: SystemTime,
    /// Whether the claim was bound when first read (no wait to record).
    pub was_bound: bool,
    pub result: Result<(), RuntimeError>,
}

/// Waits (up to `timeout`) until the claim `name` is Bound. A claim that
/// is Lost or deleted fails at once; one still Pending at the timeout
/// fails with the last warning Kubernetes gave about it
/// (`ProvisioningFailed`, ...), if any. `WaitForFirstConsumer` classes
/// bind once the workspace pod is scheduled, so that pod is made first.
pub async fn wait_until_bound(
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
