//! The Kubernetes runtime: every step is a pod in one namespace
//! (`--kubernetes-namespace`).
//!
//! A step's pod has an init container, `fetch-inputs`, that copies its
//! inputs from the artifact claim into the step's working root (on the same
//! claim: the build's own, see [`workspace`], or the shared one), and a
//! main container in the step's image running
//! [`scripts::WRAPPER`]: the step's process is that script's child, with
//! stdin, stdout, stderr and the exit code on files on the claim, so it
//! neither dies with an exec stream nor depends on atc staying up. atc
//! talks to it through `pods/exec`: to hand over stdin and start it
//! ([`scripts::START`]), and to follow its output from any offset
//! ([`scripts::FOLLOW`]), which is how an attach after an atc restart
//! replays what it had not read. Artifacts live on the claim and are
//! handled by exec'ing into a long-lived helper pod that mounts it
//! ([`store`]): the build's workspace pod, or `atc-artifact-helper`. One
//! watch of the namespace's atc pods serves every step ([`watch`]). The
//! scripts are POSIX shell: step images need `/bin/sh` (see [`scripts`]
//! for why not a helper binary).

mod api;
mod exec;
mod failures;
mod images;
mod pod;
mod scripts;
mod security;
mod stages;
mod store;
mod watch;
mod workspace;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use opentelemetry::Context;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use self::exec::{Ended, Stdin};
use self::images::Images;
pub use self::images::default_base_types;
use self::pod::{MAIN, PodSettings, SavedStep, step_dir};
use self::scripts::sh;
use self::store::{ArtifactStore, Exit};
use self::watch::PodWatch;
use super::{
    Artifact, ExecIo, ExecOutput, ImageSpec, OutputOffset, OutputSink, OutputStream, ProcessSpec, Runtime,
    RuntimeError, StepHandle, StepInfo, StepMetadata, StepObserver, StepOutcome, StepSpec, TarGzStream, UploadLimits,
    WorkerInfo,
};
use crate::metric::events::PodStarted;
use crate::resource::builtin::BUILTIN_TYPES;
use crate::telemetry::propagation;
use crate::telemetry::spans::{PodSpan, StepPod};

/// How a [`K8sRuntime`] is set up (the `--kubernetes-*` flags).
#[derive(Debug, Clone)]
pub struct K8sRuntimeOptions {
    pub namespace: String,
    /// How long a scheduled pod may take to run (images pulled, inputs staged).
    pub pod_startup_timeout: Duration,
    /// How long a pod may wait for a node.
    pub pod_scheduling_timeout: Duration,
    pub image_pull_secrets: Vec<String>,
    pub service_account: Option<String>,
    /// The storage class of the claims the runtime creates.
    pub storage_class: Option<String>,
    /// The size of the claims the runtime creates.
    pub workspace_size: String,
    /// A ReadWriteMany claim to keep every build's artifacts and step
    /// roots on, instead of a claim per build ([`workspace`]); uploads,
    /// check steps and caches are on it either way (else on
    /// `atc-artifacts`, which the runtime creates).
    pub artifact_store_claim: Option<String>,
    /// A ReadWriteMany claim for task caches instead of the artifact claim.
    pub cache_claim: Option<String>,
    /// Base resource type → image.
    pub base_resource_types: BTreeMap<String, String>,
    /// The image of the artifact helper pod, the `fetch-inputs` init
    /// container and atc's built-in resource types: it has `sh`, `tar`,
    /// coreutils and atc.
    pub helper_image: String,
    /// Where atc is in the helper image.
    pub helper_atc_path: String,
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations as Kubernetes JSON objects.
    pub tolerations: Vec<Value>,
    /// Where uploads are checked and unpacked before they are sent.
    pub scratch_dir: PathBuf,
    /// Most bytes of stdout kept with [`super::Stdout::Capture`].
    pub capture_limit: usize,
}

impl K8sRuntimeOptions {
    pub fn new(namespace: &str) -> Self {
        K8sRuntimeOptions {
            namespace: namespace.to_string(),
            pod_startup_timeout: Duration::from_secs(5 * 60),
            pod_scheduling_timeout: Duration::from_secs(15 * 60),
            image_pull_secrets: Vec::new(),
            service_account: None,
            storage_class: None,
            workspace_size: "10Gi".into(),
            artifact_store_claim: None,
            cache_claim: None,
            base_resource_types: default_base_types(),
            helper_image: "concourse-atc/atc:latest".into(),
            helper_atc_path: "/usr/local/bin/atc".into(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            scratch_dir: std::env::temp_dir(),
            capture_limit: 10 * 1024 * 1024,
        }
    }

    fn claim(&self) -> &str {
        self.artifact_store_claim.as_deref().unwrap_or(DEFAULT_CLAIM)
    }

    /// The build whose own claim the step's files go on: any step of a
    /// build but a check, unless one claim serves every build.
    fn workspace_build(&self, metadata: &StepMetadata) -> Option<i64> {
        if self.artifact_store_claim.is_some() || metadata.step_type == "check" {
            return None;
        }
        metadata.build_id
    }
}

const DEFAULT_CLAIM: &str = "atc-artifacts";
const HELPER_POD: &str = "atc-artifact-helper";
/// How long a pod that was deleted may take to go.
const GONE_WITHIN: Duration = Duration::from_secs(60);
/// How often following a step's output may be cut off (API server
/// restarts, dropped connections) before the step is given up on.
const FOLLOW_ATTEMPTS: u32 = 10;

pub struct K8sRuntime {
    options: K8sRuntimeOptions,
    pods: Api<Pod>,
    claims: Api<PersistentVolumeClaim>,
    watch: PodWatch,
    store: ArtifactStore,
    /// The `k8s.pod` spans of the pods this process started, until their
    /// step exits or stops (an atc that restarted has lost them, as the
    /// local runtime loses its process spans).
    spans: Mutex<HashMap<String, PodSpan>>,
}

impl K8sRuntime {
    /// Makes the shared artifact claim (unless one is given) and its helper pod
    /// if they are not there, and starts watching the namespace's pods.
    pub async fn new(client: Client, options: K8sRuntimeOptions) -> Result<Self, RuntimeError> {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &options.namespace);
        let claims = Api::namespaced(client.clone(), &options.namespace);
        if options.artifact_store_claim.is_none() {
            create_claim(&client, &options).await?;
        }
        // A claim named by a flag must be there: a pod mounting a missing
        // claim would only wait for it until the scheduling timeout.
        let named_claims = [
            ("--kubernetes-artifact-store-claim", &options.artifact_store_claim),
            ("--kubernetes-cache-claim", &options.cache_claim),
        ];
        for (flag, claim) in named_claims {
            if let Some(name) = claim {
                ensure_claim_exists(&client, &options.namespace, flag, name).await?;
            }
        }
        let selector = format!("{}={}", pod::MANAGED_BY.0, pod::MANAGED_BY.1);
        let watch = PodWatch::start(pods.clone(), &options.namespace, &selector);
        let store =
            ArtifactStore { pods: pods.clone(), helper: HELPER_POD.into(), scratch: options.scratch_dir.clone() };
        let runtime = K8sRuntime { options, pods, claims, watch, store, spans: Mutex::default() };
        runtime.store().await?;
        Ok(runtime)
    }

    /// The artifact store of the shared claim, once its helper pod runs.
    async fn store(&self) -> Result<ArtifactStore, RuntimeError> {
        let labels = BTreeMap::from([("concourse.ci/role", "artifact-helper".to_string())]);
        self.running_helper(HELPER_POD, || pod::helper_pod(HELPER_POD, labels, &self.settings())).await
    }

    /// The store of the helper pod `name` (described by `describe`), once
    /// it runs.
    async fn running_helper(
        &self,
        name: &str,
        describe: impl FnOnce() -> Result<Pod, serde_json::Error>,
    ) -> Result<ArtifactStore, RuntimeError> {
        let store = self.created_helper(name, describe).await?;
        self.until_running(name).await?;
        Ok(store)
    }

    /// The store of the helper pod `name`, made if missing: one that failed
    /// or went (evicted, deleted, its node drained) is replaced first.
    async fn created_helper(
        &self,
        name: &str,
        describe: impl FnOnce() -> Result<Pod, serde_json::Error>,
    ) -> Result<ArtifactStore, RuntimeError> {
        self.watch.ready().await;
        let helper = self.watch.get(name);
        let store = ArtifactStore { helper: name.to_string(), ..self.store.clone() };
        if helper.as_deref().is_some_and(usable) {
            return Ok(store);
        }
        if helper.as_deref().is_some_and(|pod| failures::is_deleted(pod) || failures::failure(pod).is_some()) {
            tracing::warn!(pod = name, "replacing a helper pod");
            self.delete(name, Duration::ZERO).await;
            let gone = self.watch.wait_for(name, |pod| pod.is_none().then_some(()));
            tokio::time::timeout(GONE_WITHIN, gone)
                .await
                .map_err(|_| RuntimeError::Unavailable(format!("pod {name} was deleted but is still there")))?;
        }
        let helper = describe().map_err(invalid_pod)?;
        match self.create(name, &helper, &Context::new()).await {
            Ok(()) | Err(RuntimeError::AlreadyStarted(_)) => Ok(store),
            Err(err) => Err(err),
        }
    }

    /// The store a step's files and outputs are on.
    async fn step_store(&self, metadata: &StepMetadata) -> Result<ArtifactStore, RuntimeError> {
        match self.options.workspace_build(metadata) {
            Some(build) => self.build_store(build, None).await,
            None => self.store().await,
        }
    }

    /// The store an artifact is on.
    async fn artifact_store(&self, artifact: &Artifact) -> Result<ArtifactStore, RuntimeError> {
        match workspace::build_of_artifact(&artifact.id) {
            Some(build) => self.build_store(build, None).await,
            None => self.store().await,
        }
    }

    fn settings(&self) -> PodSettings<'_> {
        PodSettings {
            claim: self.options.claim(),
            shared_claim: None,
            affinity: None,
            cache_claim: self.options.cache_claim.as_deref(),
            helper_image: &self.options.helper_image,
            service_account: self.options.service_account.as_deref(),
            image_pull_secrets: &self.options.image_pull_secrets,
            node_selector: &self.options.node_selector,
            tolerations: &self.options.tolerations,
        }
    }

    fn worker_name(&self) -> String {
        format!("k8s-{}", self.options.namespace)
    }

    async fn create(&self, name: &str, pod: &Pod, parent: &Context) -> Result<(), RuntimeError> {
        let params = PostParams::default();
        let created = api::retrying("create", "pods", parent, || self.pods.create(&params, pod)).await;
        match created {
            Ok(_) => Ok(()),
            Err(err) if api::status_code(&err) == Some(409) => match StepHandle::parse(name) {
                Ok(handle) => Err(RuntimeError::AlreadyStarted(handle)),
                Err(_) => Err(RuntimeError::Setup(format!("pod {name} exists already"))),
            },
            Err(err) => Err(api::failed(&format!("creating pod {name}"), err)),
        }
    }

    /// The pod, from the watch or (just made elsewhere) from the API.
    async fn find(&self, name: &str) -> Result<Option<Arc<Pod>>, RuntimeError> {
        self.watch.ready().await;
        if let Some(pod) = self.watch.get(name) {
            return Ok(Some(pod));
        }
        let fetched = api::retrying("get", "pods", &self.span_context(name), || self.pods.get_opt(name)).await;
        Ok(fetched.map_err(|err| api::failed(&format!("reading pod {name}"), err))?.map(Arc::new))
    }

    /// Waits until the pod is placed on a node (within the scheduling
    /// timeout), then until it runs (within the startup timeout), failing
    /// as soon as its status shows why it cannot.
    async fn until_running(&self, name: &str) -> Result<(), RuntimeError> {
        let mut seen = false;
        let mut unschedulable = None;
        let scheduled = self.watch.wait_for(name, |pod| match pod {
            None if seen => Some(Err(RuntimeError::Interrupted)),
            None => None,
            Some(pod) => {
                seen = true;
                unschedulable = failures::unschedulable(pod);
                if let Some(failure) = failures::failure(pod) {
                    return Some(Err(failure));
                }
                pod.spec.as_ref().and_then(|spec| spec.node_name.as_ref()).map(|_| Ok(()))
            }
        });
        let timeout = self.options.pod_scheduling_timeout;
        match tokio::time::timeout(timeout, scheduled).await {
            Ok(result) => result?,
            Err(_) => {
                let why = unschedulable.unwrap_or_else(|| "the scheduler did not place it".into());
                return Err(RuntimeError::TimedOut(format!("pod {name} was not scheduled within {timeout:?}: {why}")));
            }
        }
        let running = self.watch.wait_for(name, |pod| match pod {
            None => Some(Err(RuntimeError::Interrupted)),
            Some(pod) if failures::is_deleted(pod) => {
                Some(Err(failures::taken_off_node(pod).unwrap_or(RuntimeError::Interrupted)))
            }
            Some(pod) => match failures::failure(pod) {
                Some(failure) => Some(Err(failure)),
                None => failures::is_running(pod).then_some(Ok(())),
            },
        });
        let timeout = self.options.pod_startup_timeout;
        tokio::time::timeout(timeout, running)
            .await
            .map_err(|_| RuntimeError::TimedOut(format!("pod {name} did not start within {timeout:?}")))?
    }

    async fn start_step(&self, spec: StepSpec, observer: Arc<dyn StepObserver>) -> Result<StepHandle, RuntimeError> {
        let handle = spec.handle.clone();
        let images = Images {
            base_types: &self.options.base_resource_types,
            helper_image: &self.options.helper_image,
            helper_atc: &self.options.helper_atc_path,
        };
        let metadata = match &spec.image {
            Some(ImageSpec::Artifact(artifact)) => {
                Some(self.artifact_store(artifact).await?.image_metadata(artifact).await?)
            }
            _ => None,
        };
        let program = images.program(spec.image.as_ref(), &spec.process, metadata.as_ref())?;
        let described = program.describe.clone();
        let build = self.options.workspace_build(&spec.metadata);
        let image_artifact = match &spec.image {
            Some(ImageSpec::Artifact(artifact)) => Some(("the image".to_string(), artifact)),
            _ => None,
        };
        let mounted = spec.inputs.iter().map(|input| (format!("input {}", input.path), &input.artifact));
        for (what, artifact) in mounted.chain(image_artifact) {
            let on = workspace::build_of_artifact(&artifact.id);
            if on.is_some() && on != build {
                return Err(RuntimeError::Setup(format!(
                    "{what}: artifact {} is on the claim of another build, which this step cannot mount",
                    artifact.id
                )));
            }
        }
        let workspace_claim = build.map(workspace::claim_name);
        let mut settings = self.settings();
        if let (Some(build), Some(claim)) = (build, &workspace_claim) {
            settings.claim = claim;
            settings.shared_claim = Some(self.options.claim());
            settings.affinity = Some(workspace::affinity(build));
        }
        let pod = pod::step_pod(&spec, program, &settings).map_err(invalid_pod)?;
        let name = handle.as_str();
        let span = StepPod { name, namespace: &self.options.namespace }.start(&step_context(&spec));
        let workspace_ready = match build {
            Some(build) => self.build_store(build, Some(&span)).await.map(|_| ()),
            None => Ok(()),
        };
        let created_at = Instant::now();
        let created = match workspace_ready {
            Ok(()) => self.create(name, &pod, &span.context()).await,
            Err(err) => Err(err),
        };
        if let Err(err) = created {
            span.end(None, None, Some(error_type(&err)));
            return Err(err);
        }
        span.phase("Pending");
        let cx = span.context();
        self.spans.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), span);
        let started = async {
            self.until_running(name).await?;
            self.record_running(name, created_at);
            observer.placed(&self.worker_name());
            observer.image_ready(&described);
            if let Some(stdin) = spec.process.stdin {
                let command = sh(scripts::START, [stdin.len().to_string()]);
                let stdin = Stdin::Bytes(stdin.into());
                match exec::collect(&self.pods, name, MAIN, command, stdin, &cx).await? {
                    (Ended::Exited(0), ..) => {}
                    (ended, _, err) => {
                        return Err(RuntimeError::Setup(format!(
                            "cannot hand the step its stdin ({ended:?}): {}",
                            String::from_utf8_lossy(&err).trim()
                        )));
                    }
                }
            }
            Ok(())
        };
        if let Err(err) = started.await {
            self.end_span(name, Some(&err)).await;
            // The pod is of no use; the error says why.
            self.delete(name, Duration::ZERO).await;
            return Err(err);
        }
        Ok(handle)
    }

    /// The context of the pod's span, for its requests (none when this
    /// process did not start the pod, or it is not traced).
    fn span_context(&self, name: &str) -> Context {
        let spans = self.spans.lock().unwrap_or_else(|p| p.into_inner());
        spans.get(name).map(PodSpan::context).unwrap_or_default()
    }

    /// The pod runs: its start-up time as a metric, its span's exemplar.
    fn record_running(&self, name: &str, created_at: Instant) {
        let spans = self.spans.lock().unwrap_or_else(|p| p.into_inner());
        let Some(span) = spans.get(name) else { return };
        span.phase("Running");
        PodStarted { startup: created_at.elapsed(), span: &span.span_context() }.emit();
    }

    /// Ends the pod's span, if this process has it, with where the pod's
    /// time went (scheduling, image pulls from its Events, init containers,
    /// the main container's run up to now), the node, the last phase, and
    /// the error if any.
    async fn end_span(&self, name: &str, error: Option<&RuntimeError>) {
        let Some(span) = self.spans.lock().unwrap_or_else(|p| p.into_inner()).remove(name) else { return };
        let pod = self.watch.get(name);
        if let Some(pod) = &pod {
            let events: Api<Event> = Api::namespaced(self.pods.clone().into_client(), &self.options.namespace);
            let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
            let listed = api::retrying("list", "events", &span.context(), || events.list(&params)).await;
            stages::record_startup(&span, pod, &listed.map(|list| list.items).unwrap_or_default());
            stages::record_run(&span, pod, SystemTime::now());
        }
        let node = pod.as_ref().and_then(|pod| pod.spec.as_ref()?.node_name.clone());
        let phase = pod.as_ref().and_then(|pod| pod.status.as_ref()?.phase.clone());
        span.end(node.as_deref(), phase.as_deref(), error.map(error_type));
    }

    async fn attach_step(
        &self,
        handle: &StepHandle,
        sink: Arc<dyn OutputSink>,
        since: OutputOffset,
    ) -> Result<StepOutcome, RuntimeError> {
        let attached = self.follow_to_exit(handle, sink, since).await;
        if let Err(err) = &attached {
            self.end_span(handle.as_str(), Some(err)).await;
        }
        attached
    }

    async fn follow_to_exit(
        &self,
        handle: &StepHandle,
        sink: Arc<dyn OutputSink>,
        since: OutputOffset,
    ) -> Result<StepOutcome, RuntimeError> {
        let name = handle.as_str();
        let pod = self.find(name).await?.ok_or_else(|| RuntimeError::UnknownStep(handle.clone()))?;
        if failures::is_deleted(&pod) {
            return Err(failures::taken_off_node(&pod).unwrap_or(RuntimeError::Interrupted));
        }
        let saved =
            SavedStep::of(&pod).ok_or_else(|| RuntimeError::Setup(format!("pod {name} is not a step of atc")))?;
        // Taken up after a crash before the pod ran: it must run first.
        self.until_running(name).await?;
        // Captured stdout never reached the sink: it is read whole each time.
        let mut offset = if saved.capture_stdout { OutputOffset { stdout: 0, ..since } } else { since };
        let mut captured = Vec::new();
        let mut attempts = 0;
        loop {
            let followed = self.follow(name, &saved, &sink, &mut offset, &mut captured);
            let ended = tokio::select! {
                ended = followed => ended?,
                failure = self.ended_early(name) => return Err(failure),
            };
            match ended {
                Ended::Exited(0) => break,
                Ended::Exited(scripts::NEVER_STARTED) => {
                    return Err(RuntimeError::Lost(
                        "the step never started: the atc that created its pod stopped before handing it its stdin"
                            .into(),
                    ));
                }
                ended => {
                    attempts += 1;
                    // Cut off: the pod's status says why, or the stream dropped and is followed again.
                    let why = tokio::time::timeout(Duration::from_secs(5), self.ended_early(name)).await;
                    if let Ok(failure) = why {
                        return Err(failure);
                    }
                    if attempts >= FOLLOW_ATTEMPTS {
                        return Err(RuntimeError::Lost(format!("following the step's output failed: {ended:?}")));
                    }
                    tracing::warn!(step = name, ?ended, "following a step's output was cut off; following again");
                }
            }
        }
        let prefix = self.options.workspace_build(&saved.metadata).map(workspace::artifact_prefix).unwrap_or_default();
        let store = self.step_store(&saved.metadata).await?;
        let (exit, outputs) = store.capture(name, &prefix, &saved.outputs()).await?;
        self.end_span(name, None).await;
        let exit_code = match exit {
            Exit::Code(code) => code,
            Exit::NotFound(program) => {
                return Err(RuntimeError::Setup(format!("cannot run {program}: executable file not found")));
            }
        };
        Ok(StepOutcome {
            exit_code,
            outputs: outputs.into_iter().collect(),
            stdout: saved.capture_stdout.then_some(captured),
        })
    }

    /// Waits until the pod shows why its step cannot finish: taken off
    /// its node, stopped (deleted) or failed.
    async fn ended_early(&self, name: &str) -> RuntimeError {
        self.watch
            .wait_for(name, |pod| match pod {
                None => Some(RuntimeError::Interrupted),
                Some(pod) if failures::is_deleted(pod) => {
                    Some(failures::taken_off_node(pod).unwrap_or(RuntimeError::Interrupted))
                }
                Some(pod) => failures::failure(pod),
            })
            .await
    }

    /// Streams the step's output from `offset` until its exit code is
    /// there (`Exited(0)`) or the stream is cut off.
    async fn follow(
        &self,
        name: &str,
        saved: &SavedStep,
        sink: &Arc<dyn OutputSink>,
        offset: &mut OutputOffset,
        captured: &mut Vec<u8>,
    ) -> Result<Ended, RuntimeError> {
        let (sender, mut receiver) = mpsc::channel(16);
        let start = if saved.stdin { "wait" } else { "now" };
        let command = sh(scripts::FOLLOW, [offset.stdout.to_string(), offset.stderr.to_string(), start.into()]);
        let cx = self.span_context(name);
        let follow = exec::run(&self.pods, name, MAIN, command, Stdin::None, sender, &cx);
        let limit = self.options.capture_limit;
        let consume = async {
            while let Some(ExecOutput { stream, chunk }) = receiver.recv().await {
                *offset = offset.advanced(stream, chunk.len());
                if stream == OutputStream::Stdout && saved.capture_stdout {
                    captured.extend_from_slice(&chunk);
                    if captured.len() > limit {
                        return Err(RuntimeError::StdoutTooLarge { limit_bytes: limit });
                    }
                } else {
                    sink.write(stream, &chunk, *offset);
                }
            }
            Ok(())
        };
        let (ended, ()) = tokio::try_join!(follow, consume)?;
        Ok(ended)
    }

    async fn exec_in(&self, handle: &StepHandle, process: ProcessSpec, io: ExecIo) -> Result<i32, RuntimeError> {
        let name = handle.as_str();
        match self.find(name).await? {
            Some(pod) if !failures::is_deleted(&pod) => {}
            _ => return Err(RuntimeError::UnknownStep(handle.clone())),
        }
        let mut args = vec![process.dir.clone(), process.env.len().to_string()];
        args.extend(process.env.iter().map(|(key, value)| format!("{key}={value}")));
        args.push(process.path.clone());
        args.extend(process.args.iter().cloned());
        let stdin = match io.stdin {
            Some(chunks) => Stdin::Channel(chunks),
            None => Stdin::None,
        };
        let (sender, mut receiver) = mpsc::channel::<ExecOutput>(1);
        let cx = self.span_context(name);
        let run = exec::run(&self.pods, name, MAIN, sh(scripts::EXEC, args), stdin, sender, &cx);
        // The first line of stdout is the script's own: whether the program started.
        let forward = async {
            let mut first_line = Vec::new();
            let mut started = None;
            while let Some(ExecOutput { stream, chunk }) = receiver.recv().await {
                let chunk = match (stream, started) {
                    (OutputStream::Stdout, None) => {
                        first_line.extend_from_slice(&chunk);
                        let Some(end) = first_line.iter().position(|b| *b == b'\n') else { continue };
                        let rest = first_line.split_off(end + 1);
                        started = Some(first_line == b"ready\n");
                        if first_line != b"ready\n" {
                            continue;
                        }
                        if rest.is_empty() {
                            continue;
                        }
                        bytes::Bytes::from(rest)
                    }
                    _ => chunk,
                };
                let _ = io.output.send(ExecOutput { stream, chunk }).await;
            }
            first_line
        };
        let (ended, first_line) = tokio::join!(run, forward);
        match first_line.as_slice() {
            b"ready\n" => {}
            b"not-found\n" => return Err(RuntimeError::ExecutableNotFound(process.path)),
            b"no-dir\n" => {
                return Err(RuntimeError::Setup(format!("no directory '{}' in the step", process.dir)));
            }
            _ => {}
        }
        match ended? {
            Ended::Exited(code) => Ok(code),
            Ended::Failed(message) => Err(RuntimeError::Setup(format!("cannot run {}: {message}", process.path))),
        }
    }

    /// Deletes the pod (`grace` for its processes to stop), not waiting.
    async fn delete(&self, name: &str, grace: Duration) {
        // 0 would remove the pod without its node's word: at least a second.
        self.delete_with(name, grace.as_secs().max(1) as u32).await
    }

    /// Removes the pod at once, without waiting for its node to say its
    /// containers stopped: for a pod Kubernetes took off a lost node, whose
    /// kubelet may never answer again (as the pod garbage collector does).
    async fn force_delete(&self, name: &str) {
        self.delete_with(name, 0).await
    }

    async fn delete_with(&self, name: &str, grace_seconds: u32) {
        let params = DeleteParams { grace_period_seconds: Some(grace_seconds), ..Default::default() };
        match api::retrying("delete", "pods", &self.span_context(name), || self.pods.delete(name, &params)).await {
            Ok(_) => {}
            Err(err) if api::status_code(&err) == Some(404) => {}
            Err(err) => tracing::warn!(pod = name, error = %err, "cannot delete a pod"),
        }
    }

    async fn stop_step(&self, handle: &StepHandle, grace: Duration) -> Result<(), RuntimeError> {
        let name = handle.as_str();
        let pod = self.find(name).await?;
        let build =
            pod.as_deref().and_then(SavedStep::of).and_then(|saved| self.options.workspace_build(&saved.metadata));
        // Stopped before its exit was seen: interrupted.
        self.end_span(name, Some(&RuntimeError::Interrupted)).await;
        if pod.as_deref().and_then(failures::taken_off_node).is_some() {
            self.force_delete(name).await;
        } else {
            self.delete(name, grace).await;
        }
        let gone = self.watch.wait_for(name, |pod| pod.is_none().then_some(()));
        tokio::time::timeout(grace + GONE_WITHIN, gone).await.map_err(|_| {
            RuntimeError::Unavailable(format!(
                "pod {name} was deleted but is still there after {:?}",
                grace + GONE_WITHIN
            ))
        })?;
        let store = match build {
            // A build's claim that went took the step's files with it.
            Some(build) => match self.running_build_store(build).await {
                Some(store) => store,
                None => return Ok(()),
            },
            None => self.store().await?,
        };
        store.remove("removing the step's files", vec![step_dir(name)]).await
    }

    fn step_pods(&self) -> Vec<Arc<Pod>> {
        self.watch
            .all()
            .into_iter()
            .filter(|pod| pod.metadata.labels.as_ref().is_some_and(|l| l.contains_key(pod::STEP_TYPE_LABEL)))
            .filter(|pod| !failures::is_deleted(pod))
            .collect()
    }
}

/// The step span the engine handed the step, as its processes see it.
fn step_context(spec: &StepSpec) -> Context {
    let Some(trace) = &spec.trace else { return Context::new() };
    let mut env = vec![("TRACEPARENT".to_string(), trace.traceparent.clone())];
    if let Some(state) = &trace.tracestate {
        env.push(("TRACESTATE".to_string(), state.clone()));
    }
    propagation::context_from_environment(&env)
}

/// A failure as `error.type` names it.
fn error_type(err: &RuntimeError) -> &'static str {
    match err {
        RuntimeError::Interrupted => "interrupted",
        RuntimeError::ImageUnavailable { .. } => "ImagePullBackOff",
        RuntimeError::OutOfMemory { .. } => "OOMKilled",
        RuntimeError::Lost(_) => "lost",
        RuntimeError::TimedOut(_) => "timeout",
        RuntimeError::Unavailable(_) => "unavailable",
        RuntimeError::StdoutTooLarge { .. } => "stdout_too_large",
        _ => "setup",
    }
}

/// A helper pod that can be exec'd into.
fn usable(pod: &Pod) -> bool {
    failures::is_running(pod) && !failures::is_deleted(pod)
}

fn invalid_pod(err: serde_json::Error) -> RuntimeError {
    RuntimeError::Setup(format!("cannot describe the pod: {err}"))
}

async fn create_claim(client: &Client, options: &K8sRuntimeOptions) -> Result<(), RuntimeError> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &options.namespace);
    let mut spec = json!({
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": options.workspace_size}},
    });
    if let Some(class) = &options.storage_class {
        spec["storageClassName"] = json!(class);
    }
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": DEFAULT_CLAIM, "labels": {pod::MANAGED_BY.0: pod::MANAGED_BY.1}},
        "spec": spec,
    }))
    .map_err(invalid_pod)?;
    let params = PostParams::default();
    match api::retrying("create", "persistentvolumeclaims", &Context::new(), || claims.create(&params, &claim)).await {
        Ok(_) => Ok(()),
        Err(err) if api::status_code(&err) == Some(409) => Ok(()),
        Err(err) => Err(api::failed("creating the artifact claim", err)),
    }
}

async fn ensure_claim_exists(client: &Client, namespace: &str, flag: &str, name: &str) -> Result<(), RuntimeError> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    match api::retrying("get", "persistentvolumeclaims", &Context::new(), || claims.get_opt(name)).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(RuntimeError::Setup(format!(
            "{flag} {name}: namespace {namespace} has no PersistentVolumeClaim {name}"
        ))),
        Err(err) => Err(api::failed(&format!("{flag} {name}: reading the claim"), err)),
    }
}

impl Runtime for K8sRuntime {
    fn start(
        &self,
        spec: StepSpec,
        observer: Arc<dyn StepObserver>,
    ) -> BoxFuture<'_, Result<StepHandle, RuntimeError>> {
        self.start_step(spec, observer).boxed()
    }

    fn attach(
        &self,
        handle: &StepHandle,
        sink: Arc<dyn OutputSink>,
        since: OutputOffset,
    ) -> BoxFuture<'_, Result<StepOutcome, RuntimeError>> {
        let handle = handle.clone();
        async move { self.attach_step(&handle, sink, since).await }.boxed()
    }

    fn exec(&self, handle: &StepHandle, process: ProcessSpec, io: ExecIo) -> BoxFuture<'_, Result<i32, RuntimeError>> {
        let handle = handle.clone();
        async move { self.exec_in(&handle, process, io).await }.boxed()
    }

    fn stop(&self, handle: &StepHandle, grace: Duration) -> BoxFuture<'_, Result<(), RuntimeError>> {
        let handle = handle.clone();
        async move { self.stop_step(&handle, grace).await }.boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<StepInfo>, RuntimeError>> {
        async move {
            self.watch.ready().await;
            let worker = self.worker_name();
            Ok(self
                .step_pods()
                .iter()
                .filter_map(|pod| {
                    let handle = StepHandle::parse(pod.metadata.name.as_deref()?).ok()?;
                    let metadata = SavedStep::of(pod)?.metadata;
                    Some(StepInfo { handle, worker: worker.clone(), metadata })
                })
                .collect())
        }
        .boxed()
    }

    fn import_artifact(&self, tgz: TarGzStream, limits: UploadLimits) -> BoxFuture<'_, Result<Artifact, RuntimeError>> {
        async move { self.store().await?.import(tgz, limits).await }.boxed()
    }

    fn export_artifact(&self, artifact: &Artifact) -> BoxFuture<'_, Result<TarGzStream, RuntimeError>> {
        let artifact = artifact.clone();
        async move { self.artifact_store(&artifact).await?.export(&artifact).await }.boxed()
    }

    fn read_file(&self, artifact: &Artifact, path: &str) -> BoxFuture<'_, Result<Vec<u8>, RuntimeError>> {
        let (artifact, path) = (artifact.clone(), path.to_string());
        async move { self.artifact_store(&artifact).await?.read_file(&artifact, &path).await }.boxed()
    }

    fn release(&self, artifacts: Vec<Artifact>) -> BoxFuture<'_, Result<(), RuntimeError>> {
        async move {
            let mut by_build: BTreeMap<Option<i64>, Vec<Artifact>> = BTreeMap::new();
            for artifact in artifacts {
                by_build.entry(workspace::build_of_artifact(&artifact.id)).or_default().push(artifact);
            }
            for (build, artifacts) in by_build {
                let store = match build {
                    // A build's claim that went took its artifacts with it.
                    Some(build) => match self.running_build_store(build).await {
                        Some(store) => store,
                        None => continue,
                    },
                    None => self.store().await?,
                };
                store.release(&artifacts).await?;
            }
            Ok(())
        }
        .boxed()
    }

    fn build_storage(&self) -> BoxFuture<'_, Result<Vec<i64>, RuntimeError>> {
        self.workspace_builds().boxed()
    }

    fn remove_build_storage(&self, build_id: i64) -> BoxFuture<'_, Result<(), RuntimeError>> {
        self.remove_workspace(build_id).boxed()
    }

    fn remove_caches(&self, keys: Vec<String>) -> BoxFuture<'_, Result<(), RuntimeError>> {
        let paths = keys.iter().map(|key| pod::cache_dir(key)).collect();
        async move { self.store().await?.remove("removing caches", paths).await }.boxed()
    }

    fn workers(&self) -> BoxFuture<'_, Vec<WorkerInfo>> {
        async move {
            self.watch.ready().await;
            let mut resource_types: Vec<String> = self.options.base_resource_types.keys().cloned().collect();
            resource_types.extend(BUILTIN_TYPES.iter().map(|name| name.to_string()));
            resource_types.sort();
            resource_types.dedup();
            vec![WorkerInfo {
                name: self.worker_name(),
                platform: "linux".into(),
                tags: Vec::new(),
                resource_types,
                active_containers: self.step_pods().len() as u64,
                // The shared claim and each build's own.
                active_volumes: 1 + self.workspace_pods() as u64,
            }]
        }
        .boxed()
    }
}
