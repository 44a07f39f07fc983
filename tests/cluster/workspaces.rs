//! A build's own claim on the Kubernetes runtime: its steps, one after
//! another and at once, run on the node of the pod holding the claim
//! (either node would take them) and see each other's outputs; uploads on
//! the shared claim reach them too; the claim goes when the runtime
//! removes the build's storage.

use std::time::Duration;

use anyhow::{Context, ensure};
use atc::runtime::k8s::K8sRuntime;
use atc::runtime::{InputMount, OutputMount, OutputOffset, Runtime, StepSpec};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod, Taint};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::cluster::Cluster;
use crate::runtime::support::{RecordingSink, eventually, import, observer, tgz};
use crate::runtime::{shared, shell};

/// A build id no other check uses.
pub fn unused_build_id() -> i64 {
    1_000_000 + i64::from(rand::random::<u16>())
}

/// Runs `step` to its exit, answering its stdout and the node its pod ran on.
async fn run_on_node(
    runtime: &K8sRuntime,
    pods: &Api<Pod>,
    step: StepSpec,
) -> anyhow::Result<(atc::runtime::StepOutcome, String, String)> {
    let handle = runtime.start(step, observer()).await?;
    let sink = RecordingSink::new();
    let outcome = runtime.attach(&handle, sink.clone(), OutputOffset::default()).await?;
    let pod = pods.get(handle.as_str()).await?;
    let node = pod.spec.and_then(|spec| spec.node_name).context("the step's pod has no node")?;
    runtime.stop(&handle, Duration::from_secs(1)).await?;
    Ok((outcome, sink.stdout(), node))
}

pub async fn the_steps_of_a_build_share_its_node_and_claim(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let mut options = shared.options.clone();
    // Either node will do (the second is tainted): only the affinity keeps a build's steps together.
    options.tolerations = vec![json!({"key": "atc.test/dedicated", "operator": "Exists"})];
    let runtime = K8sRuntime::new(shared.client.clone(), options).await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &shared.options.namespace);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), &shared.options.namespace);
    let build = unused_build_id();
    let of_build = |mut step: StepSpec| {
        step.metadata.build_id = Some(build);
        step
    };
    let upload = import(&runtime, tgz(&[("file", "uploaded\n", 0o644)])).await;

    let mut writer = of_build(shell().step("echo carried over > out/file"));
    writer.outputs = vec![OutputMount { name: "out".into(), path: "out".into() }];
    let (written, _, first_node) = run_on_node(&runtime, &pods, writer).await?;
    ensure!(written.exit_code == 0, "the first step exited {}", written.exit_code);
    let output = written.outputs.get("out").context("no output")?.clone();
    ensure!(output.id.starts_with(&format!("ws{build}_")), "output {} is not on the build's claim", output.id);

    let holder = pods.get(&format!("atc-build-{build}")).await?;
    let holder_node = holder.spec.and_then(|spec| spec.node_name).unwrap_or_default();
    // The scheduler would now rather place a pod elsewhere: only the affinity keeps the next steps there.
    let avoided = Avoided::taint(cluster, &holder_node).await?;
    let later = async {
        let mut reader = of_build(shell().step("cat in/file up/file"));
        reader.inputs = vec![
            InputMount { artifact: output.clone(), path: "in".into() },
            InputMount { artifact: upload, path: "up".into() },
        ];
        let (read, stdout, second_node) = run_on_node(&runtime, &pods, reader).await?;
        ensure!(
            read.exit_code == 0 && stdout == "carried over\nuploaded\n",
            "exit {}, stdout {stdout:?}",
            read.exit_code
        );
        // Two at once.
        let (third, fourth) = tokio::join!(
            run_on_node(&runtime, &pods, of_build(shell().step("true"))),
            run_on_node(&runtime, &pods, of_build(shell().step("true"))),
        );
        anyhow::Ok([second_node, third?.2, fourth?.2])
    }
    .await;
    avoided.lift().await?;
    let nodes = [vec![first_node], later?.to_vec()].concat();
    ensure!(
        nodes.iter().all(|node| *node == holder_node),
        "steps ran on {nodes:?}, the claim is held on {holder_node}"
    );
    let claim = claims.get(&format!("atc-build-{build}")).await?;
    let phase = claim.status.and_then(|status| status.phase);
    ensure!(phase.as_deref() == Some("Bound"), "claim phase {phase:?}");
    ensure!(
        String::from_utf8(runtime.read_file(&output, "file").await?)? == "carried over\n",
        "the output cannot be read back"
    );

    ensure!(runtime.build_storage().await?.contains(&build), "the build's storage is not listed");
    runtime.remove_build_storage(build).await?;
    let gone = eventually(Duration::from_secs(60), || async {
        matches!(claims.get_opt(&format!("atc-build-{build}")).await, Ok(None))
    });
    ensure!(gone.await, "the build's claim is still there");
    // Its artifacts went with it: releasing them is no error.
    runtime.release(vec![output]).await?;
    Ok(())
}

/// A node with a PreferNoSchedule taint, which the scheduler avoids when
/// it may; [`Avoided::lift`] puts its taints back as they were.
struct Avoided {
    nodes: Api<Node>,
    name: String,
    before: Vec<Taint>,
}

impl Avoided {
    async fn taint(cluster: &Cluster, name: &str) -> anyhow::Result<Avoided> {
        let nodes: Api<Node> = Api::all(cluster.client.clone());
        let before = nodes.get(name).await?.spec.and_then(|spec| spec.taints).unwrap_or_default();
        let mut taints = serde_json::to_value(&before)?;
        if let Some(list) = taints.as_array_mut() {
            list.push(json!({"key": "atc.test/avoid", "effect": "PreferNoSchedule"}));
        }
        let patch = json!({"spec": {"taints": taints}});
        nodes.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        Ok(Avoided { nodes, name: name.to_string(), before })
    }

    async fn lift(self) -> anyhow::Result<()> {
        let patch = json!({"spec": {"taints": self.before}});
        self.nodes.patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        Ok(())
    }
}
