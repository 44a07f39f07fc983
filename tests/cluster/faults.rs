//! Faults the node agent injects on request (pod annotation
//! `atc.test/fault`, Node annotation for a node), each seen through the API
//! with the status and Events a kubelet gives.

use std::ops::ControlFlow;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{AttachParams, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::cluster::{Cluster, NODE_B};
use crate::support::{
    create_pod, describe, sleeping_pod, terminated, wait_for, wait_for_events, wait_for_phase, waiting,
};

const WITHIN: Duration = Duration::from_secs(60);
const FAULT: &str = "atc.test/fault";

fn faulty_pod(name: &str, fault: &str) -> Value {
    sleeping_pod(name, json!({"annotations": {FAULT: fault}}))
}

pub async fn an_image_that_cannot_be_pulled_backs_off(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-pull").await?;
    let pods = create_pod(&cluster.client, &namespace, faulty_pod("unpullable", "image-pull")).await?;
    wait_for("the container to wait in ImagePullBackOff", WITHIN, || async {
        let pod = pods.get("unpullable").await?;
        let reason = waiting(&pod).and_then(|waiting| waiting.reason).unwrap_or_default();
        Ok(if reason == "ImagePullBackOff" { ControlFlow::Break(()) } else { ControlFlow::Continue(describe(&pod)) })
    })
    .await?;
    wait_for_events(&cluster.client, &namespace, "unpullable", &["Pulling", "Failed", "BackOff"], WITHIN).await?;
    let pod = pods.get("unpullable").await?;
    let phase = pod.status.as_ref().and_then(|status| status.phase.as_deref());
    ensure!(phase == Some("Pending"), "phase {phase:?} instead of Pending");
    Ok(())
}

pub async fn an_oom_kill_ends_the_container_as_a_kubelet_reports_it(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-oom").await?;
    let pods = create_pod(&cluster.client, &namespace, faulty_pod("greedy", "oom")).await?;
    let pod = wait_for_phase(&pods, "greedy", "Failed", WITHIN).await?;
    let ended = terminated(&pod).context("the container has no terminated state")?;
    ensure!(
        ended.reason.as_deref() == Some("OOMKilled") && ended.exit_code == 137,
        "terminated {:?} with {} instead of OOMKilled with 137",
        ended.reason,
        ended.exit_code
    );
    Ok(())
}

pub async fn an_evicted_pod_fails_as_evicted(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-evict").await?;
    let pods = create_pod(&cluster.client, &namespace, faulty_pod("evicted", "evict")).await?;
    let pod = wait_for_phase(&pods, "evicted", "Failed", WITHIN).await?;
    let reason = pod.status.as_ref().and_then(|status| status.reason.as_deref());
    ensure!(reason == Some("Evicted"), "pod reason {reason:?} instead of Evicted");
    wait_for_events(&cluster.client, &namespace, "evicted", &["Started", "Evicted"], WITHIN).await?;
    Ok(())
}

pub async fn a_failing_exec_is_an_error(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-exec-fault").await?;
    let pods = create_pod(&cluster.client, &namespace, faulty_pod("no-exec", "exec-fail")).await?;
    wait_for_phase(&pods, "no-exec", "Running", WITHIN).await?;
    let params = AttachParams::default().stdin(false).stdout(true).stderr(true);
    let mut process = match pods.exec("no-exec", ["echo", "ran"], &params).await {
        // Refused outright: as good as failing once started.
        Err(_) => return Ok(()),
        Ok(process) => process,
    };
    let mut out = String::new();
    if let Some(mut stdout) = process.stdout() {
        stdout.read_to_string(&mut out).await?;
    }
    let status = match process.take_status() {
        Some(status) => status.await,
        None => None,
    };
    let succeeded = status.as_ref().and_then(|status| status.status.as_deref()) == Some("Success");
    ensure!(!succeeded && out.is_empty(), "the exec ran: stdout {out:?}, status {status:?}");
    Ok(())
}

pub async fn a_node_that_stops_reporting_becomes_not_ready(cluster: &Cluster) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    set_node_b_fault(cluster, json!("not-ready")).await?;
    let not_ready = wait_for_readiness(&nodes, false).await;
    // The node comes back whatever happened, for whatever runs after.
    set_node_b_fault(cluster, Value::Null).await?;
    not_ready?;
    wait_for_readiness(&nodes, true).await
}

/// Sets (or, with null, clears) the node agent's fault on the second node:
/// `not-ready` stops its heartbeats.
pub async fn set_node_b_fault(cluster: &Cluster, fault: Value) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let patch = json!({"metadata": {"annotations": {FAULT: fault}}});
    nodes.patch(NODE_B, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

/// Waits until the Ready condition of the second node is (or is not) True.
async fn wait_for_readiness(nodes: &Api<Node>, ready: bool) -> anyhow::Result<()> {
    // The node lifecycle controller notices a node whose heartbeats stopped within its grace period (40 s).
    let within = Duration::from_secs(120);
    wait_for(&format!("{NODE_B} to be ready: {ready}"), within, || async {
        let node = nodes.get(NODE_B).await?;
        let condition = node
            .status
            .and_then(|status| status.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|condition| condition.type_ == "Ready");
        let Some(condition) = condition else { bail!("{NODE_B} has no Ready condition") };
        Ok(if (condition.status == "True") == ready {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(format!("Ready={} ({:?})", condition.status, condition.reason))
        })
    })
    .await
}
