//! What running builds costs on the Kubernetes runtime, against the test
//! control plane (`scripts/k8s-up.sh`, started here and stopped after; or
//! the one `ATC_TEST_K8S_DIR` names, left running), with a real server on
//! SQLite whose steps are pods:
//!
//! - trigger-to-first-log latency of a trivial task (`echo hi`) over
//!   `LATENCY_BUILDS` builds one after another;
//! - throughput: 100 such builds across 10 jobs, triggered at once;
//!
//! both with a claim per build (the default) and with one shared claim
//! (`--kubernetes-artifact-store-claim`).
//!
//! Each build's time is split by what the bench sees of its pod through a
//! watch of its own (millisecond instants, unlike the whole seconds of pod
//! timestamps): before the pod exists is atc's (API, scheduler, engine,
//! the create request); from the pod's creation until its main container
//! runs is the control plane's (scheduler, node agent, the `fetch-inputs`
//! init container, the agent's simulated 300 ms image pull); from then to
//! the first log line is atc's exec and output following, with the node
//! agent's exec in it.
//!
//!   cargo bench --bench k8s_builds
//!
//! Needs root, as the cluster checks do. (`cargo test` builds bench targets
//! and runs them without `--bench`; then this does nothing.)

// The whole test harness (it allows its own dead code), of which this uses the server and its client.
#[path = "../tests/support/mod.rs"]
mod support;

#[allow(dead_code, reason = "shared with tests/cluster, whose node names this does not use")]
#[path = "../tests/cluster/cluster.rs"]
mod cluster;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atc::runtime::k8s::{K8sRuntime, K8sRuntimeOptions};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{DeleteParams, PostParams, WatchEvent, WatchParams};
use reqwest::Method;
use serde_json::Value;
use support::{Backend, On, TestServer};

const LATENCY_BUILDS: usize = 20;
const THROUGHPUT_JOBS: usize = 10;
const BUILDS_PER_JOB: usize = 10;
const DEADLINE: Duration = Duration::from_secs(600);

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    tracing_subscriber::fmt().with_env_filter("warn").with_writer(std::io::stderr).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(cluster::Cluster::run(bench));
}

async fn bench(cluster: &cluster::Cluster) {
    for storage in [Storage::ClaimPerBuild, Storage::SharedClaim] {
        println!("{}:", storage.describe());
        run(cluster, storage).await;
    }
}

/// Where the builds' files go: the two layouts the runtime offers.
#[derive(Clone, Copy)]
enum Storage {
    /// The default: each build's own claim, its steps on the node of the pod holding it.
    ClaimPerBuild,
    /// `--kubernetes-artifact-store-claim`: one ReadWriteMany claim for every build.
    SharedClaim,
}

impl Storage {
    fn describe(self) -> &'static str {
        match self {
            Storage::ClaimPerBuild => "A claim per build (the default)",
            Storage::SharedClaim => "One shared claim (--kubernetes-artifact-store-claim)",
        }
    }
}

/// The latency and throughput rounds against a server of their own, in a
/// namespace of their own.
async fn run(cluster: &cluster::Cluster, storage: Storage) {
    let suffix = match storage {
        Storage::ClaimPerBuild => "own",
        Storage::SharedClaim => "shared",
    };
    let namespace = cluster.namespace(&format!("bench-{suffix}-{}", std::process::id())).await.unwrap();
    let mut options = K8sRuntimeOptions::new(&namespace);
    options.helper_image = "atc.test/helper".into();
    options.helper_atc_path = cluster::atc_binary().to_string_lossy().into_owned();
    if let Storage::SharedClaim = storage {
        options.artifact_store_claim = Some(shared_claim(cluster, &namespace).await);
    }
    let runtime = K8sRuntime::new(cluster.client.clone(), options).await.expect("the Kubernetes runtime starts");
    let pods = PodTimes::watch(Api::namespaced(cluster.client.clone(), &namespace)).await;
    let server = TestServer::start(On { backend: Backend::Sqlite, runtime: Some(Arc::new(runtime)) }).await;
    let token = server.admin_token().await;

    latency(&server, &token, &pods).await;
    throughput(&server, &token, &pods).await;

    server.stop().await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.client.clone());
    namespaces.delete(&namespace, &DeleteParams::default()).await.unwrap();
}

/// A ReadWriteMany claim in `namespace`, as an operator would make for
/// `--kubernetes-artifact-store-claim` (atc checks it exists at start-up).
async fn shared_claim(cluster: &cluster::Cluster, namespace: &str) -> String {
    let name = "bench-artifacts";
    let claim: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .unwrap();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), namespace);
    claims.create(&PostParams::default(), &claim).await.expect("the shared claim is created");
    name.to_string()
}

fn pipeline(jobs: usize) -> String {
    let mut yaml = String::from("jobs:\n");
    for job in 0..jobs {
        yaml.push_str(&format!(
            "- name: j{job}\n  plan:\n  - task: hi\n    config: {{platform: linux, run: {{path: echo, args: [hi]}}}}\n"
        ));
    }
    yaml
}

/// When the bench saw each pod (by name) created and its main container
/// running, from a watch of the namespace.
#[derive(Clone, Default)]
struct PodTimes(Arc<Mutex<HashMap<String, Seen>>>);

/// A pod's first sighting, and when its main container was first seen running.
type Seen = (Instant, Option<Instant>);

impl PodTimes {
    async fn watch(pods: Api<Pod>) -> PodTimes {
        let times = PodTimes::default();
        let mut events = pods.watch(&WatchParams::default(), "0").await.expect("watch pods").boxed();
        let seen = times.clone();
        tokio::spawn(async move {
            while let Ok(Some(event)) = events.try_next().await {
                let (WatchEvent::Added(pod) | WatchEvent::Modified(pod)) = event else { continue };
                let now = Instant::now();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let running = pod.status.and_then(|status| status.container_statuses).is_some_and(|containers| {
                    containers.iter().any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
                });
                let mut times = seen.0.lock().unwrap();
                let entry = times.entry(name).or_insert((now, None));
                if running && entry.1.is_none() {
                    entry.1 = Some(now);
                }
            }
        });
        times
    }

    /// Created and running instants of build `id`'s task pod.
    fn of_build(&self, id: i64) -> (Instant, Instant) {
        let prefix = format!("b{id}-task-");
        let times = self.0.lock().unwrap();
        let (_, &(created, running)) =
            times.iter().find(|(name, _)| name.starts_with(&prefix)).expect("the build's pod was seen");
        (created, running.expect("the build's pod ran"))
    }
}

async fn trigger(server: &TestServer, token: &str, job: &str) -> i64 {
    let path = format!("/api/v1/teams/main/pipelines/bench/jobs/{job}/builds");
    let response = server.request(Method::POST, &path, Some(token)).send().await.unwrap();
    assert_eq!(response.status(), 200, "trigger {job}");
    response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// When the build's first log line and its end arrived; panics if it did
/// not succeed.
async fn follow(server: &TestServer, token: &str, build: i64) -> (Instant, Instant) {
    let response = server.get(&format!("/api/v1/builds/{build}/events"), Some(token)).await;
    let mut stream = response.bytes_stream();
    let (mut text, mut first_log, mut status) = (String::new(), None, String::new());
    while let Some(chunk) = tokio::time::timeout(DEADLINE, stream.next()).await.expect("the build ends in time") {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            if frame.contains("event: end") {
                assert_eq!(status, "succeeded", "build {build}");
                return (first_log.expect("the build printed a line"), Instant::now());
            }
            let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else { continue };
            let event: Value = serde_json::from_str(data).unwrap();
            if event["event"] == "log" && first_log.is_none() {
                first_log = Some(Instant::now());
            }
            if event["event"] == "status" {
                status = event["data"]["status"].as_str().unwrap_or_default().to_string();
            }
        }
    }
    panic!("build {build}'s events ended without `end`");
}

/// One build's time, split by its pod.
struct Split {
    before_pod: Duration,
    pod_startup: Duration,
    to_first_log: Duration,
    total: Duration,
}

impl Split {
    fn of(triggered: Instant, (created, running): (Instant, Instant), first_log: Instant) -> Split {
        Split {
            before_pod: created.saturating_duration_since(triggered),
            pod_startup: running.saturating_duration_since(created),
            to_first_log: first_log.saturating_duration_since(running),
            total: first_log - triggered,
        }
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
}

fn print_medians(splits: &[Split]) {
    let of = |part: fn(&Split) -> Duration| ms(median(splits.iter().map(part).collect()));
    println!("  trigger to first log:                median {}", of(|s| s.total));
    println!("    atc until the pod exists:          median {}", of(|s| s.before_pod));
    println!("    control plane, pod to running:     median {}", of(|s| s.pod_startup));
    println!("    running to first log (atc's exec): median {}", of(|s| s.to_first_log));
}

async fn latency(server: &TestServer, token: &str, pods: &PodTimes) {
    server.set_and_unpause(token, "bench", &pipeline(THROUGHPUT_JOBS)).await;
    let mut splits = Vec::with_capacity(LATENCY_BUILDS);
    for _ in 0..LATENCY_BUILDS {
        let triggered = Instant::now();
        let build = trigger(server, token, "j0").await;
        let (first_log, _) = follow(server, token, build).await;
        splits.push(Split::of(triggered, pods.of_build(build), first_log));
    }
    println!("{LATENCY_BUILDS} builds of `echo hi` one after another (SQLite, Kubernetes runtime):");
    print_medians(&splits);
}

async fn throughput(server: &TestServer, token: &str, pods: &PodTimes) {
    let builds = THROUGHPUT_JOBS * BUILDS_PER_JOB;
    let started = Instant::now();
    let runs = (0..builds).map(|n| async move {
        let triggered = Instant::now();
        let build = trigger(server, token, &format!("j{}", n % THROUGHPUT_JOBS)).await;
        let (first_log, ended) = follow(server, token, build).await;
        (build, triggered, first_log, ended)
    });
    let finished = futures_util::future::join_all(runs).await;
    let wall = started.elapsed();
    let splits: Vec<Split> = finished
        .iter()
        .map(|&(build, triggered, first_log, _)| Split::of(triggered, pods.of_build(build), first_log))
        .collect();
    let last_end = finished.iter().map(|&(.., ended)| ended).max().unwrap();
    println!("{builds} builds of `echo hi` across {THROUGHPUT_JOBS} jobs, triggered at once:");
    println!(
        "  all finished in {:.1} s: {:.2} builds/s",
        (last_end - started).as_secs_f64(),
        builds as f64 / wall.as_secs_f64()
    );
    print_medians(&splits);
}
