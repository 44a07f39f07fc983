//! A build outlives the atc running it on Kubernetes too: `atc web
//! --kubernetes-namespace` is killed (`kill -9`) while a task pod prints,
//! started again on the same database, and the build carries on to its
//! end with every line shown once. The same `atc web` nodes and API client
//! as `tests/cli` (included from there), on the PostgreSQL of
//! `tests/support`.

use std::time::Duration;

use anyhow::ensure;

use crate::cluster::Cluster;

use crate::atc_support::nodes::{Client, Node, printed_lines};
use crate::atc_support::{ATC, postgres};

/// Short, so that the restarted node takes the build over soon after the
/// killed one's lease runs out.
const LEASE: Duration = Duration::from_secs(3);
const LINES: usize = 12;

pub async fn a_build_carries_on_after_atc_is_killed_mid_pod(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace(&format!("restart-{}", std::process::id())).await?;
    let flags: Vec<String> = [
        "--kubernetes-namespace",
        &namespace,
        "--kubernetes-kubeconfig",
        &cluster.kubeconfig.display().to_string(),
        "--kubernetes-helper-image",
        "atc.test/helper",
        "--kubernetes-helper-atc-path",
        ATC,
    ]
    .map(str::to_string)
    .to_vec();
    let pg = postgres::fresh_database().await;
    let atc = Node::start_with(&pg, LEASE, None, &flags);
    let client = Client::login(&atc.url).await;
    let script = format!("for n in $(seq 1 {LINES}); do echo \"line $n\"; sleep 1; done");
    client
        .set_pipeline(&format!(
            "jobs:\n- name: job\n  plan:\n  - task: print\n    config:\n      platform: linux\n      image_resource: {{type: registry-image, source: {{repository: busybox}}}}\n      run: {{path: sh, args: [-c, '{script}']}}\n"
        ))
        .await;
    let build = client.trigger().await;
    client.wait_for_line(build, "line 3").await;

    atc.signal("KILL");
    drop(atc);
    let atc = Node::start_with(&pg, LEASE, None, &flags);
    let client = Client::login(&atc.url).await;
    let status = client.wait_for_end(build, Duration::from_secs(120)).await;
    let lines = printed_lines(&client.events(build).await.unwrap_or_default());
    let expected: Vec<String> = (1..=LINES).map(|n| format!("line {n}")).collect();
    let printed: Vec<&String> = lines.iter().filter(|line| line.starts_with("line ")).collect();
    ensure!(status == "succeeded", "the build {status}; atc said:\n{}", atc.log());
    ensure!(printed.iter().copied().eq(expected.iter()), "each line once, in order: {lines:?}");
    // The workers route shows the namespace as one worker.
    let workers = client.get("/api/v1/workers").await.unwrap_or_default();
    let names: Vec<&str> = workers.as_array().into_iter().flatten().filter_map(|w| w["name"].as_str()).collect();
    ensure!(names == [format!("k8s-{namespace}")], "workers {names:?}");
    Ok(())
}
