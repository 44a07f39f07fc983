//! The controllers and the scheduler at work: garbage collection of owned
//! objects, a Deployment's pods becoming ready, a pod no node can take.

use std::ops::ControlFlow;
use std::time::Duration;

use anyhow::ensure;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

use crate::cluster::{Cluster, IMAGE};
use crate::support::{create_pod, describe, sleeping_pod, wait_for, wait_for_events, wait_for_phase};

const WITHIN: Duration = Duration::from_secs(90);

pub async fn objects_owned_by_a_deleted_pod_are_collected(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-gc").await?;
    let pods = create_pod(&cluster.client, &namespace, sleeping_pod("owner", json!({}))).await?;
    let pod = wait_for_phase(&pods, "owner", "Running", WITHIN).await?;
    let uid = pod.metadata.uid.unwrap_or_default();
    let configs: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &namespace);
    let owned = json!({
        "metadata": {"name": "owned", "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": uid}]},
        "data": {"k": "v"},
    });
    configs.create(&PostParams::default(), &serde_json::from_value(owned)?).await?;

    // A polite delete: the node stops the process, then the pod goes.
    pods.delete("owner", &DeleteParams { grace_period_seconds: Some(5), ..Default::default() }).await?;
    wait_for("the pod to be gone", WITHIN, || async {
        Ok(match pods.get_opt("owner").await? {
            None => ControlFlow::Break(()),
            Some(pod) => ControlFlow::Continue(describe(&pod)),
        })
    })
    .await?;
    wait_for("the owned ConfigMap to be collected", WITHIN, || async {
        Ok(match configs.get_opt("owned").await? {
            None => ControlFlow::Break(()),
            Some(_) => ControlFlow::Continue("still there".into()),
        })
    })
    .await
}

pub async fn a_deployment_becomes_ready(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-deployment").await?;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), &namespace);
    let deployment = json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "main", "image": IMAGE, "command": ["sleep", "300"]}]},
            },
        },
    });
    deployments.create(&PostParams::default(), &serde_json::from_value(deployment)?).await?;
    wait_for("2 ready replicas", WITHIN, || async {
        let status = deployments.get("web").await?.status.unwrap_or_default();
        let ready = status.ready_replicas.unwrap_or(0);
        let available = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"));
        Ok(if ready == 2 && available {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(format!("{ready} ready, available: {available}"))
        })
    })
    .await
}

pub async fn an_unmatched_node_selector_leaves_a_pod_pending(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-unschedulable").await?;
    let spec = json!({
        "metadata": {"name": "nowhere"},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"atc.test/no-such-label": "anywhere"},
            "containers": [{"name": "main", "image": IMAGE, "command": ["true"]}],
        },
    });
    let pods = create_pod(&cluster.client, &namespace, spec).await?;
    wait_for_events(&cluster.client, &namespace, "nowhere", &["FailedScheduling"], WITHIN).await?;
    let pod = pods.get("nowhere").await?;
    let phase = pod.status.as_ref().and_then(|status| status.phase.as_deref());
    ensure!(phase == Some("Pending"), "phase {phase:?}");
    ensure!(pod.spec.and_then(|spec| spec.node_name).is_none(), "the pod was placed on a node");
    Ok(())
}
