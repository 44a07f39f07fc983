//! What a step costs on the Kubernetes runtime, against the test cluster
//! (`scripts/k8s-up.sh`, started here and stopped at the end; root needed),
//! each figure from one run:
//!
//! - trigger-to-first-log of a trivial task (`echo hi` in busybox), over 20
//!   steps one after another, split into the pod's start-up (`start`:
//!   create, schedule, pull, the fetch-inputs init container, the main
//!   container running; the control plane's and the node's share, plus one
//!   create request) and the output path after it (`attach` to the first
//!   chunk: atc's exec of the follower and its polling, atc's share);
//! - throughput: 100 trivial steps run to their end (start, attach, stop),
//!   10 at a time.
//!
//!   cargo bench --bench k8s_steps
//!
//! (`cargo test` builds bench targets and runs them without `--bench`; then
//! this does nothing.)

#[allow(dead_code, reason = "shared with tests/cluster, which uses more of it")]
#[path = "../tests/cluster/cluster.rs"]
mod cluster;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atc::engine::step_process::Unobserved;
use atc::runtime::k8s::{K8sRuntime, K8sRuntimeOptions};
use atc::runtime::{
    ImageSpec, Limits, OutputOffset, OutputSink, OutputStream, ProcessSpec, Runtime, Stdout, StepHandle, StepMetadata,
    StepSpec,
};
use futures_util::StreamExt;
use serde_json::json;

const LATENCY_STEPS: usize = 20;
const THROUGHPUT_STEPS: usize = 100;
const CONCURRENCY: usize = 10;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    tracing_subscriber::fmt().with_env_filter("warn").with_writer(std::io::stderr).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(cluster::Cluster::run(measure)).expect("the benchmark ran");
}

async fn measure(cluster: &cluster::Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace(&format!("bench-{}", std::process::id())).await?;
    let mut options = K8sRuntimeOptions::new(&namespace);
    options.helper_image = "atc.test/helper".into();
    options.helper_atc_path = cluster::atc_binary().to_string_lossy().into_owned();
    let runtime = K8sRuntime::new(cluster.client.clone(), options).await?;

    let (mut started, mut first_output, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..LATENCY_STEPS {
        let sink = Arc::new(FirstChunk::default());
        let began = Instant::now();
        let handle = runtime.start(step(&format!("latency-{n}")), Arc::new(Unobserved)).await?;
        let start_took = began.elapsed();
        let attached = Instant::now();
        runtime.attach(&handle, sink.clone(), OutputOffset::default()).await?;
        let first = sink.at().expect("the step printed");
        started.push(start_took);
        first_output.push(first - attached);
        total.push(first - began);
        runtime.stop(&handle, Duration::ZERO).await?;
    }
    println!("trigger-to-first-log over {LATENCY_STEPS} steps (median / max):");
    for (what, samples) in [
        ("  pod start-up (control plane, node)", &mut started),
        ("  output path (atc)", &mut first_output),
        ("  total", &mut total),
    ] {
        samples.sort();
        println!("{what}: {} / {}", ms(samples[samples.len() / 2]), ms(samples[samples.len() - 1]));
    }

    let began = Instant::now();
    let runtime = &runtime;
    let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(0..THROUGHPUT_STEPS)
        .map(|n| async move {
            let handle = runtime.start(step(&format!("throughput-{n}")), Arc::new(Unobserved)).await?;
            let outcome = runtime.attach(&handle, Arc::new(FirstChunk::default()), OutputOffset::default()).await?;
            anyhow::ensure!(outcome.exit_code == 0, "step {n} exited {}", outcome.exit_code);
            runtime.stop(&handle, Duration::ZERO).await?;
            Ok(())
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let took = began.elapsed();
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    println!(
        "throughput: {THROUGHPUT_STEPS} steps, {CONCURRENCY} at a time, in {:.1} s ({:.1} steps/min)",
        took.as_secs_f64(),
        THROUGHPUT_STEPS as f64 * 60.0 / took.as_secs_f64()
    );
    Ok(())
}

/// `echo hi` in busybox.
fn step(name: &str) -> StepSpec {
    let source = json!({"repository": "busybox"});
    StepSpec {
        handle: StepHandle::parse(name).unwrap(),
        metadata: StepMetadata { team: "main".into(), step_type: "task".into(), ..Default::default() },
        image: Some(ImageSpec::Resource { type_: "registry-image".into(), source, params: json!({}), version: None }),
        privileged: false,
        limits: Limits::default(),
        tags: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        caches: Vec::new(),
        process: ProcessSpec {
            path: "echo".into(),
            args: vec!["hi".into()],
            dir: String::new(),
            user: None,
            env: Vec::new(),
            stdin: None,
            stdout: Stdout::Stream,
        },
        sidecars: Vec::new(),
        trace: None,
    }
}

/// Notes when the first chunk of output arrived.
#[derive(Default)]
struct FirstChunk(Mutex<Option<Instant>>);

impl FirstChunk {
    fn at(&self) -> Option<Instant> {
        *self.0.lock().unwrap()
    }
}

impl OutputSink for FirstChunk {
    fn write(&self, _: OutputStream, _: &[u8], _: OutputOffset) {
        self.0.lock().unwrap().get_or_insert_with(Instant::now);
    }
}

fn ms(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}
