//! What a step pod's status says went wrong, as a [`RuntimeError`] whose
//! message names the reason Kubernetes gives.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use super::pod::{FETCH_INPUTS, MAIN};
use crate::runtime::RuntimeError;

const PULL_FAILURES: [&str; 4] = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"];

/// The failure a pod shows, if any: taken off its node, evicted, an image
/// that cannot be pulled, the main container out of memory, the inputs not
/// staged, or a pod that failed otherwise.
pub fn failure(pod: &Pod) -> Option<RuntimeError> {
    if let Some(lost) = taken_off_node(pod) {
        return Some(lost);
    }
    let status = pod.status.as_ref()?;
    if status.reason.as_deref() == Some("Evicted") {
        return Some(RuntimeError::Lost(format!(
            "the pod was evicted: {}",
            status.message.as_deref().unwrap_or("no reason given")
        )));
    }
    let init = status.init_container_statuses.iter().flatten();
    let main = status.container_statuses.iter().flatten();
    for container in init.clone().chain(main.clone()) {
        let waiting = container.state.as_ref().and_then(|state| state.waiting.as_ref());
        if let Some(waiting) = waiting.filter(|w| w.reason.as_deref().is_some_and(|r| PULL_FAILURES.contains(&r))) {
            let image = match container.name.as_str() {
                MAIN | FETCH_INPUTS => container.image.clone(),
                sidecar => format!("{} (sidecar {sidecar})", container.image),
            };
            return Some(RuntimeError::ImageUnavailable {
                image,
                reason: format!(
                    "{}: {}",
                    waiting.reason.as_deref().unwrap_or_default(),
                    waiting.message.as_deref().unwrap_or("cannot be pulled")
                ),
            });
        }
    }
    for container in init {
        if let Some((code, reason)) = terminated(container).filter(|(code, _)| *code != 0) {
            return Some(RuntimeError::Setup(format!(
                "init container {} failed with exit code {code} ({reason}): the inputs could not be staged",
                container.name
            )));
        }
    }
    if let Some((_, reason)) = main.clone().find(|c| c.name == MAIN).and_then(terminated) {
        if reason == "OOMKilled" {
            return Some(RuntimeError::OutOfMemory { limit_bytes: memory_limit(pod) });
        }
        return Some(RuntimeError::Lost(format!("the step's container ended ({reason})")));
    }
    if status.phase.as_deref() == Some("Failed") {
        return Some(RuntimeError::Lost(format!(
            "the pod failed: {}",
            status.message.as_deref().or(status.reason.as_deref()).unwrap_or("no reason given")
        )));
    }
    None
}

/// The pod was taken off its node by Kubernetes, not by atc: its node went
/// NotReady or unreachable (the taint manager deletes it), is gone (the pod
/// garbage collector), was drained, or the kubelet stopped it. Kubernetes
/// says so with the DisruptionTarget condition (older clusters with the
/// pod's reason NodeLost) before the pod goes.
pub fn taken_off_node(pod: &Pod) -> Option<RuntimeError> {
    let status = pod.status.as_ref()?;
    let node = pod.spec.as_ref().and_then(|spec| spec.node_name.as_deref()).unwrap_or("unknown");
    let disruption = status.conditions.iter().flatten().find(|c| c.type_ == "DisruptionTarget" && c.status == "True");
    let (reason, message) = match disruption {
        Some(condition) => (condition.reason.as_deref(), condition.message.as_deref()),
        None if status.reason.as_deref() == Some("NodeLost") => (Some("NodeLost"), status.message.as_deref()),
        None => return None,
    };
    let what = match reason {
        Some("DeletionByTaintManager") => format!("node {node} became not ready or unreachable"),
        Some("DeletionByPodGC" | "NodeLost") => format!("node {node} is gone"),
        Some("EvictionByEvictionAPI") => format!("the pod was evicted from node {node} (drained?)"),
        Some("PreemptionByScheduler") => format!("the pod was preempted on node {node}"),
        Some("TerminationByKubelet") => format!("the kubelet of node {node} stopped the pod"),
        _ => format!("the pod was taken off node {node}"),
    };
    Some(RuntimeError::Lost(format!(
        "{what}; the pod was deleted ({}: {})",
        reason.unwrap_or("no reason given"),
        message.unwrap_or("no message")
    )))
}

fn terminated(container: &ContainerStatus) -> Option<(i32, String)> {
    let ended = container.state.as_ref()?.terminated.as_ref()?;
    Some((ended.exit_code, ended.reason.clone().unwrap_or_default()))
}

fn memory_limit(pod: &Pod) -> Option<u64> {
    let main = pod.spec.as_ref()?.containers.iter().find(|c| c.name == MAIN)?;
    let limit = main.resources.as_ref()?.limits.as_ref()?.get("memory")?;
    limit.0.parse().ok()
}

/// Why a pod waits to be scheduled, while the scheduler says it cannot be.
pub fn unschedulable(pod: &Pod) -> Option<String> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let scheduled = conditions.iter().find(|c| c.type_ == "PodScheduled")?;
    (scheduled.status == "False" && scheduled.reason.as_deref() == Some("Unschedulable"))
        .then(|| scheduled.message.clone().unwrap_or_else(|| "no node fits".into()))
}

pub fn is_running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|status| status.phase.as_deref()) == Some("Running")
}

pub fn is_deleted(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}
