//! The Kubernetes runtime when things go wrong: each fault the node agent
//! injects (through an image rule of `tests/k8s/node/images.yaml`) errors
//! the step with Kubernetes' reason; a pod no node takes times out; and a
//! step outlives the runtime that started it (atc killed), its output read
//! once across the restart.

use std::time::Duration;

use anyhow::{Context, ensure};
use atc::runtime::k8s::K8sRuntime;
use atc::runtime::{OutputMount, OutputOffset, Runtime, RuntimeError};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::runtime::support::{RecordingSink, Shell, eventually, import, observer, read, run, sh_process, tgz};
use crate::runtime::{image, shared};

async fn run_in(runtime: &dyn Runtime, repository: &str, script: &str) -> Result<i32, RuntimeError> {
    let step = Shell { image: Some(image(repository)) }.step(script);
    run(runtime, step, RecordingSink::new(), CancellationToken::new()).await.map(|outcome| outcome.exit_code)
}

pub async fn an_image_that_cannot_be_pulled_errors_the_step(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let result = run_in(&shared.runtime, "atc.test/broken-pull", "true").await;
    let Err(err @ RuntimeError::ImageUnavailable { .. }) = &result else { anyhow::bail!("{result:?}") };
    let message = err.to_string();
    ensure!(message.contains("atc.test/broken-pull") && message.contains("ErrImagePull"), "{message}");
    Ok(())
}

pub async fn an_oom_kill_errors_the_step_as_out_of_memory(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let result = run_in(&shared.runtime, "atc.test/oom", "sleep 30").await;
    ensure!(matches!(result, Err(RuntimeError::OutOfMemory { .. })), "{result:?}");
    Ok(())
}

pub async fn an_evicted_pod_errors_the_step_as_lost(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let result = run_in(&shared.runtime, "atc.test/evicted", "sleep 30").await;
    ensure!(matches!(&result, Err(RuntimeError::Lost(m)) if m.contains("evicted")), "{result:?}");
    Ok(())
}

pub async fn a_pod_no_node_takes_times_out(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let mut options = shared.options.clone();
    options.node_selector.insert("atc.test/no-such-label".into(), "anywhere".into());
    options.pod_scheduling_timeout = Duration::from_secs(3);
    let picky = K8sRuntime::new(shared.client.clone(), options).await?;
    let result = run_in(&picky, "busybox", "true").await;
    let Err(err @ RuntimeError::TimedOut(_)) = &result else { anyhow::bail!("{result:?}") };
    ensure!(err.to_string().contains("not scheduled"), "{err}");
    // The pod that could not start is gone.
    ensure!(picky.list().await?.is_empty(), "{:?}", picky.list().await?);
    Ok(())
}

pub async fn a_lost_artifact_helper_pod_is_replaced(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let artifact = import(&shared.runtime, tgz(&[("kept", "on the claim", 0o644)])).await;
    // As an eviction or a drained node would: the pod goes, the claim stays.
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &shared.options.namespace);
    pods.delete("atc-artifact-helper", &DeleteParams { grace_period_seconds: Some(1), ..Default::default() }).await?;
    let gone = eventually(Duration::from_secs(60), || async {
        pods.get_opt("atc-artifact-helper")
            .await
            .ok()
            .flatten()
            .is_none_or(|pod| pod.metadata.deletion_timestamp.is_none())
    });
    ensure!(gone.await, "the helper pod was not deleted");
    ensure!(read(&shared.runtime, &artifact, "kept").await == "on the claim");
    Ok(())
}

pub async fn a_step_outlives_the_runtime_that_started_it(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let before_restart = K8sRuntime::new(shared.client.clone(), shared.options.clone()).await?;
    let mut step = Shell { image: Some(image("busybox")) }
        .step("echo before; while [ ! -e proceed ]; do sleep 0.1; done; echo after; echo kept > out/file; exit 7");
    step.outputs = vec![OutputMount { name: "out".into(), path: "out".into() }];
    let handle = before_restart.start(step, observer()).await?;
    let seen = RecordingSink::new();
    {
        let attach = before_restart.attach(&handle, seen.clone(), OutputOffset::default());
        let read_before = eventually(Duration::from_secs(20), || async { seen.stdout() == "before\n" });
        tokio::select! {
            ended = attach => anyhow::bail!("the step ended early: {ended:?}"),
            arrived = read_before => ensure!(arrived, "no output before the restart: {:?}", seen.stdout()),
        }
    }
    // atc dies: its attach and its watch go with it.
    drop(before_restart);

    let restarted = &shared.runtime;
    let (code, _) = crate::runtime::support::exec(restarted, &handle, sh_process("touch proceed"), None).await;
    ensure!(code? == 0, "could not let the step go on");
    let rest = RecordingSink::new();
    let outcome = restarted.attach(&handle, rest.clone(), seen.offset()).await?;
    ensure!(outcome.exit_code == 7, "exit code {}", outcome.exit_code);
    ensure!(rest.stdout() == "after\n", "after the restart: {:?} (only what was not read before)", rest.stdout());
    let output = outcome.outputs.get("out").context("no output")?;
    ensure!(read(restarted, output, "file").await == "kept\n");
    restarted.stop(&handle, Duration::from_secs(1)).await?;
    Ok(())
}
