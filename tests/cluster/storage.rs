//! Claims as the runtime uses them for a build's workspace: bound by the
//! provisioner, shared (ReadWriteMany) by pods on different nodes, mounted
//! by subPath.

use std::ops::ControlFlow;
use std::time::Duration;

use anyhow::ensure;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Api;
use kube::api::{LogParams, PostParams};
use serde_json::{Value, json};

use crate::cluster::{Cluster, IMAGE, NODE_A, NODE_B};
use crate::support::{create_pod, wait_for, wait_for_phase};

const WITHIN: Duration = Duration::from_secs(60);

pub async fn a_claim_is_bound_and_carries_files_from_one_pod_to_the_next(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-claims").await?;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), &namespace);
    let claim = json!({
        "metadata": {"name": "workspace"},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Mi"}}},
    });
    claims.create(&PostParams::default(), &serde_json::from_value(claim)?).await?;
    wait_for("the claim to be bound", WITHIN, || async {
        let claim = claims.get("workspace").await?;
        let phase = claim.status.and_then(|status| status.phase).unwrap_or_default();
        Ok(if phase == "Bound" { ControlFlow::Break(()) } else { ControlFlow::Continue(phase) })
    })
    .await?;

    // Placed on the two nodes (the second is tainted), as two steps of a build may be.
    let writer = on_node(NODE_A, "writer", "echo carried over > /workspace/file");
    let pods = create_pod(&cluster.client, &namespace, writer).await?;
    wait_for_phase(&pods, "writer", "Succeeded", WITHIN).await?;
    let reader = on_node(NODE_B, "reader", "cat /workspace/file");
    create_pod(&cluster.client, &namespace, reader).await?;
    wait_for_phase(&pods, "reader", "Succeeded", WITHIN).await?;
    let log = pods.logs("reader", &LogParams::default()).await?;
    ensure!(log == "carried over\n", "the second pod read {log:?}");
    Ok(())
}

fn on_node(node: &str, name: &str, script: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "main", "image": IMAGE, "command": ["sh", "-c", script],
                "volumeMounts": [{"name": "workspace", "mountPath": "/workspace", "subPath": "build-1"}],
            }],
            "volumes": [{"name": "workspace", "persistentVolumeClaim": {"claimName": "workspace"}}],
        },
    })
}
