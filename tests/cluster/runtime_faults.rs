//! The Kubernetes runtime when things go wrong: each fault the node agent
//! injects (through an image rule of `tests/k8s/node/images.yaml`) errors
//! the step with Kubernetes' reason; a step whose node is lost errors as
//! lost; a pod no node takes times out; and a
//! step outlives the runtime that started it (atc killed), its output read
//! once across the restart.

use std::ops::ControlFlow;
use std::time::Duration;

use anyhow::{Context, ensure};
use atc::runtime::k8s::{K8sRuntime, K8sRuntimeOptions};
use atc::runtime::{OutputMount, OutputOffset, Runtime, RuntimeError};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, NODE_B};
use crate::faults::set_node_b_fault;
use crate::runtime::support::{RecordingSink, Shell, eventually, import, observer, read, run, sh_process, tgz};
use crate::runtime::{client_with_role, documented_role, image, shared};
use crate::support::wait_for;

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

/// An operator's Role without `pods/exec`: the step errors at once, saying
/// what the Role lacks, instead of following its output again and again.
pub async fn a_role_without_pods_exec_errors_the_step_at_once(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let namespace = cluster.namespace(&format!("no-exec-{}", std::process::id())).await?;
    let mut role = documented_role()?;
    let rules = role.rules.get_or_insert_default();
    rules.retain(|rule| !rule.resources.iter().flatten().any(|resource| resource == "pods/exec"));
    let client = client_with_role(cluster, &namespace, role).await?;
    let mut options = shared.options.clone();
    options.namespace = namespace;
    let runtime = K8sRuntime::new(client, options).await?;
    let started = std::time::Instant::now();
    let result = run_in(&runtime, "busybox", "echo unreachable").await;
    let Err(err @ RuntimeError::Setup(_)) = &result else { anyhow::bail!("{result:?}") };
    ensure!(err.to_string().contains("create and get on pods/exec"), "{err}");
    ensure!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
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

/// A claim a flag names that the namespace lacks stops the runtime at
/// start-up, naming the flag, instead of pods waiting for it.
pub async fn a_missing_named_claim_is_refused_at_start_up(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    for (flag, set) in [
        ("--kubernetes-artifact-store-claim", (|o, c| o.artifact_store_claim = c) as fn(&mut K8sRuntimeOptions, _)),
        ("--kubernetes-cache-claim", |o, c| o.cache_claim = c),
    ] {
        let mut options = shared.options.clone();
        set(&mut options, Some("no-such-claim".into()));
        let started = std::time::Instant::now();
        let result = K8sRuntime::new(shared.client.clone(), options).await;
        let Err(err @ RuntimeError::Setup(_)) = &result else { anyhow::bail!("{flag}: {:?}", result.err()) };
        ensure!(err.to_string().starts_with(&format!("{flag} no-such-claim: namespace")), "{err}");
        ensure!(started.elapsed() < Duration::from_secs(30), "{flag}: took {:?}", started.elapsed());
    }
    Ok(())
}

/// `--kubernetes-cache-claim`: task caches live on a claim of their own
/// (the suite's cache case passes on it), and removing one reaches it.
pub async fn task_caches_can_have_a_claim_of_their_own(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let namespace = cluster.namespace(&format!("caches-{}", std::process::id())).await?;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), &namespace);
    let claim = json!({
        "metadata": {"name": "ci-caches"},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Mi"}}},
    });
    claims.create(&PostParams::default(), &serde_json::from_value(claim)?).await?;
    let mut options = shared.options.clone();
    options.namespace = namespace.clone();
    options.cache_claim = Some("ci-caches".into());
    let runtime = K8sRuntime::new(cluster.client.clone(), options).await?;
    crate::runtime::suite::caches_persist_across_runs_of_the_same_key(&runtime, &crate::runtime::shell()).await;

    // What a step left in its cache is on the cache claim...
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &namespace);
    let inspect = |name: &str, script: &str| {
        json!({
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script],
                    "volumeMounts": [{"name": "caches", "mountPath": "/caches"}]}],
                "volumes": [{"name": "caches", "persistentVolumeClaim": {"claimName": "ci-caches"}}],
            },
        })
    };
    let output = |name: &'static str, script: &str| {
        let pods = pods.clone();
        let pod = inspect(name, script);
        async move {
            pods.create(&PostParams::default(), &serde_json::from_value(pod)?).await?;
            let ended = eventually(Duration::from_secs(60), || async {
                let phase = pods.get(name).await.ok().and_then(|p| p.status?.phase);
                matches!(phase.as_deref(), Some("Succeeded" | "Failed"))
            });
            ensure!(ended.await, "pod {name} did not end");
            anyhow::Ok(pods.logs(name, &Default::default()).await?)
        }
    };
    let before = output("before", "cat /caches/*/count").await?;
    ensure!(before.lines().count() == 3, "the caches hold {before:?}");
    // ... and removing one reaches it.
    runtime.remove_caches(vec!["job/step/cache".into(), "other/cache".into()]).await?;
    let after = output("after", "ls -A /caches").await?;
    ensure!(after.is_empty(), "the caches still hold {after:?}");
    Ok(())
}

/// A resource step whose atc stopped after making its pod but before
/// handing it its stdin never runs: the next attach says so (after the
/// 30 s it gives a start that may still be under way) instead of waiting
/// forever.
pub async fn a_step_whose_stdin_was_lost_with_atc_is_reported_lost(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let dying = K8sRuntime::new(shared.client.clone(), shared.options.clone()).await?;
    let mut step = Shell { image: Some(image("busybox")) }.step("cat");
    step.process.stdin = Some(b"{}".to_vec());
    let handle = step.handle.clone();
    // atc dies while the pod starts: the pod is made, its stdin never handed over.
    let started = tokio::time::timeout(Duration::from_millis(50), dying.start(step, observer())).await;
    ensure!(started.is_err(), "the start finished within 50 ms: {started:?}");
    drop(dying);
    let attached = shared.runtime.attach(&handle, RecordingSink::new(), OutputOffset::default()).await;
    ensure!(matches!(&attached, Err(RuntimeError::Lost(m)) if m.contains("never started")), "{attached:?}");
    shared.runtime.stop(&handle, Duration::from_secs(1)).await?;
    Ok(())
}

/// The node of a running step goes NotReady: the taint manager deletes the
/// pod (it tolerates the not-ready and unreachable taints for a second
/// only), and the step errors as lost, naming the node, instead of waiting;
/// stopping it then does not wait for the node.
pub async fn a_step_whose_node_is_lost_errors_as_lost(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let mut options = shared.options.clone();
    options.node_selector.insert("kubernetes.io/hostname".into(), NODE_B.into());
    let for_a_second =
        |key: &str| json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1});
    options.tolerations = vec![
        json!({"key": "atc.test/dedicated", "operator": "Exists", "effect": "NoSchedule"}),
        for_a_second("node.kubernetes.io/not-ready"),
        for_a_second("node.kubernetes.io/unreachable"),
    ];
    let runtime = K8sRuntime::new(shared.client.clone(), options).await?;
    let handle = runtime.start(Shell { image: Some(image("busybox")) }.step("sleep 120"), observer()).await?;
    let ended = async {
        let sink = RecordingSink::new();
        let attached =
            tokio::time::timeout(Duration::from_secs(90), runtime.attach(&handle, sink, OutputOffset::default())).await;
        // As the engine does, at once: the pod, taken off its node, is removed without the node's word.
        let stopped =
            tokio::time::timeout(Duration::from_secs(10), runtime.stop(&handle, Duration::from_secs(1))).await;
        (attached, stopped)
    };
    let ((attached, stopped), taken_away) = tokio::join!(ended, set_node_b_fault(cluster, json!("not-ready")));
    // The node comes back whatever happened, for whatever runs after.
    set_node_b_fault(cluster, Value::Null).await?;
    taken_away?;
    wait_until_schedulable(cluster).await?;
    let result = attached.context("the step was still waiting 90 s after its node went")?;
    let lost =
        matches!(&result, Err(RuntimeError::Lost(m)) if m.contains(NODE_B) && m.contains("DeletionByTaintManager"));
    ensure!(lost, "{result:?}");
    stopped.context("stopping the lost step took more than 10 s")??;
    Ok(())
}

/// Waits until the second node is Ready and the node lifecycle controller
/// has lifted its not-ready taints.
async fn wait_until_schedulable(cluster: &Cluster) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    wait_for(&format!("{NODE_B} to be ready and untainted"), Duration::from_secs(60), || async {
        let node = nodes.get(NODE_B).await?;
        let ready = node
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let taints: Vec<String> =
            node.spec.and_then(|s| s.taints).unwrap_or_default().into_iter().map(|t| t.key).collect();
        let lifted = !taints.iter().any(|key| key.starts_with("node.kubernetes.io/"));
        Ok(if ready && lifted {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(format!("ready {ready}, taints {taints:?}"))
        })
    })
    .await
}
