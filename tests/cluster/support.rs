//! Waiting on the cluster and reading what it says.

use std::future::Future;
use std::ops::ControlFlow;
use std::time::Duration;

use anyhow::bail;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStateWaiting, Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::cluster::IMAGE;

/// Polls `probe` until it breaks with a value; fails after `within`,
/// saying what was awaited and what the cluster showed last.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<ControlFlow<T, String>>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last = match probe().await? {
            ControlFlow::Break(value) => return Ok(value),
            ControlFlow::Continue(state) => state,
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {}s waiting for {what}; last seen: {last}", within.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates the pod described by `spec` (JSON) in `namespace`.
pub async fn create_pod(client: &Client, namespace: &str, spec: Value) -> anyhow::Result<Api<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    pods.create(&PostParams::default(), &serde_json::from_value(spec)?).await?;
    Ok(pods)
}

/// The pod once its phase is `phase`.
pub async fn wait_for_phase(pods: &Api<Pod>, name: &str, phase: &str, within: Duration) -> anyhow::Result<Pod> {
    wait_for(&format!("pod {name} to be {phase}"), within, || async {
        let pod = pods.get(name).await?;
        let current = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        Ok(if current == phase { ControlFlow::Break(pod) } else { ControlFlow::Continue(describe(&pod)) })
    })
    .await
}

/// How the first container of `pod` ended, if it did.
pub fn terminated(pod: &Pod) -> Option<ContainerStateTerminated> {
    container_state(pod).and_then(|state| state.terminated.clone())
}

/// Why the first container of `pod` waits, if it does.
pub fn waiting(pod: &Pod) -> Option<ContainerStateWaiting> {
    container_state(pod).and_then(|state| state.waiting.clone())
}

fn container_state(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::ContainerState> {
    pod.status.as_ref()?.container_statuses.as_ref()?.first()?.state.as_ref()
}

/// The reasons of the Events about object `name`, oldest first.
pub async fn event_reasons(client: &Client, namespace: &str, name: &str) -> anyhow::Result<Vec<String>> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let mut listed = events.list(&ListParams::default().fields(&format!("involvedObject.name={name}"))).await?.items;
    listed.sort_by_key(|event| event.first_timestamp.clone().map(|t| t.0));
    Ok(listed.into_iter().filter_map(|event| event.reason).collect())
}

/// Waits until the Events about `name` include every one of `reasons`.
pub async fn wait_for_events(
    client: &Client,
    namespace: &str,
    name: &str,
    reasons: &[&str],
    within: Duration,
) -> anyhow::Result<Vec<String>> {
    wait_for(&format!("events {reasons:?} about {name}"), within, || async {
        let seen = event_reasons(client, namespace, name).await?;
        Ok(if reasons.iter().all(|reason| seen.iter().any(|s| s == reason)) {
            ControlFlow::Break(seen)
        } else {
            ControlFlow::Continue(format!("{seen:?}"))
        })
    })
    .await
}

/// A pod's phase, reason and container states, for failure messages.
pub fn describe(pod: &Pod) -> String {
    let status = pod.status.as_ref();
    format!(
        "phase {:?}, reason {:?}, containers {}",
        status.and_then(|s| s.phase.as_deref()),
        status.and_then(|s| s.reason.as_deref()),
        serde_json::to_string(&status.and_then(|s| s.container_statuses.as_ref())).unwrap_or_default()
    )
}

/// A pod that sleeps for five minutes, `metadata` merged into its own
/// (annotations), for checks that need a running container.
pub fn sleeping_pod(name: &str, metadata: Value) -> Value {
    let mut pod = json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": IMAGE, "command": ["sleep", "300"]}]},
    });
    if let (Some(into), Value::Object(extra)) = (pod["metadata"].as_object_mut(), metadata) {
        into.extend(extra);
    }
    pod
}

/// The exit code an exec's final status reports (0 for `Success`).
pub fn exit_code(status: &Status) -> Option<i32> {
    if status.status.as_deref() == Some("Success") {
        return Some(0);
    }
    let causes = status.details.as_ref()?.causes.as_ref()?;
    let cause = causes.iter().find(|cause| cause.reason.as_deref() == Some("ExitCode"))?;
    cause.message.as_deref()?.parse().ok()
}
