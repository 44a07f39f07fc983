//! The security context of step pods on the Kubernetes runtime: a task
//! that names a non-root uid runs restricted as that uid (the node agent
//! applies runAsUser to the container and to its execs) and can still
//! write its outputs, which `fetch-inputs` hands over to it.

use std::time::Duration;

use anyhow::{Context, ensure};
use atc::runtime::{OutputMount, OutputOffset, Runtime};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use crate::cluster::Cluster;
use crate::runtime::support::{RecordingSink, observer, read};
use crate::runtime::{shared, shell};

pub async fn a_task_as_a_non_root_uid_runs_restricted_as_that_uid(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let runtime = &shared.runtime;
    let mut step = shell().step("id -u; id -u > out/uid; echo $HOME");
    step.process.user = Some("1000".into());
    step.outputs = vec![OutputMount { name: "out".into(), path: "out".into() }];
    let handle = runtime.start(step, observer()).await?;

    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &shared.options.namespace);
    let pod = pods.get(handle.as_str()).await?;
    let spec = pod.spec.context("no pod spec")?;
    let main = spec.containers.iter().find(|c| c.name == "main").context("no main container")?;
    let context = main.security_context.as_ref().context("main has no securityContext")?;
    ensure!(context.run_as_user == Some(1000) && context.run_as_non_root == Some(true), "{context:?}");
    ensure!(context.allow_privilege_escalation == Some(false), "{context:?}");
    let seccomp = context.seccomp_profile.as_ref().map(|profile| profile.type_.as_str());
    ensure!(seccomp == Some("RuntimeDefault"), "{context:?}");
    let dropped = context.capabilities.as_ref().and_then(|c| c.drop.clone()).unwrap_or_default();
    ensure!(dropped == ["ALL"], "{context:?}");
    let init = spec.init_containers.iter().flatten().find(|c| c.name == "fetch-inputs").context("no fetch-inputs")?;
    let init_context = init.security_context.as_ref().context("fetch-inputs has no securityContext")?;
    ensure!(init_context.allow_privilege_escalation == Some(false), "{init_context:?}");

    let sink = RecordingSink::new();
    let attached = runtime.attach(&handle, sink.clone(), OutputOffset::default());
    let outcome = tokio::time::timeout(Duration::from_secs(60), attached).await??;
    ensure!(outcome.exit_code == 0, "exit {}: {}", outcome.exit_code, sink.stderr());
    ensure!(sink.stdout().starts_with("1000\n"), "the process ran as {:?}", sink.stdout());
    let out = outcome.outputs.get("out").context("no out output")?;
    ensure!(read(runtime, out, "uid").await == "1000\n");
    runtime.stop(&handle, Duration::from_secs(1)).await?;
    Ok(())
}
