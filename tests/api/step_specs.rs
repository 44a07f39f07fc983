//! What the engine hands a runtime for each step: a deterministic handle a
//! pod could be named by, the resource's custom type chain with its
//! sources interpolated (a runtime that runs images takes its image from
//! them), and the step's tags.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use atc::runtime::{
    Artifact, CustomResourceType, ExecIo, ImageSpec, OutputOffset, OutputSink, ProcessSpec, ResourceTypeImage, Runtime,
    RuntimeError, StepHandle, StepInfo, StepObserver, StepOutcome, StepSpec, TarGzStream, UploadLimits, WorkerInfo,
};
use futures_util::future::BoxFuture;

use crate::on_both_backends;
use crate::support::{Backend, TestServer, local_runtime, server_options_with};

/// The local runtime, remembering every step it is asked to start.
struct Recording {
    inner: Arc<dyn Runtime>,
    started: Mutex<Vec<StepSpec>>,
}

impl Runtime for Recording {
    fn start(
        &self,
        spec: StepSpec,
        observer: Arc<dyn StepObserver>,
    ) -> BoxFuture<'_, Result<StepHandle, RuntimeError>> {
        self.started.lock().unwrap().push(spec.clone());
        self.inner.start(spec, observer)
    }
    fn attach(
        &self,
        handle: &StepHandle,
        sink: Arc<dyn OutputSink>,
        since: OutputOffset,
    ) -> BoxFuture<'_, Result<StepOutcome, RuntimeError>> {
        self.inner.attach(handle, sink, since)
    }
    fn exec(&self, handle: &StepHandle, process: ProcessSpec, io: ExecIo) -> BoxFuture<'_, Result<i32, RuntimeError>> {
        self.inner.exec(handle, process, io)
    }
    fn stop(&self, handle: &StepHandle, grace: Duration) -> BoxFuture<'_, Result<(), RuntimeError>> {
        self.inner.stop(handle, grace)
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<StepInfo>, RuntimeError>> {
        self.inner.list()
    }
    fn import_artifact(&self, tgz: TarGzStream, limits: UploadLimits) -> BoxFuture<'_, Result<Artifact, RuntimeError>> {
        self.inner.import_artifact(tgz, limits)
    }
    fn export_artifact(&self, artifact: &Artifact) -> BoxFuture<'_, Result<TarGzStream, RuntimeError>> {
        self.inner.export_artifact(artifact)
    }
    fn read_file(&self, artifact: &Artifact, path: &str) -> BoxFuture<'_, Result<Vec<u8>, RuntimeError>> {
        self.inner.read_file(artifact, path)
    }
    fn release(&self, artifacts: Vec<Artifact>) -> BoxFuture<'_, Result<(), RuntimeError>> {
        self.inner.release(artifacts)
    }
    fn remove_caches(&self, keys: Vec<String>) -> BoxFuture<'_, Result<(), RuntimeError>> {
        self.inner.remove_caches(keys)
    }
    fn workers(&self) -> BoxFuture<'_, Vec<WorkerInfo>> {
        self.inner.workers()
    }
}

const PIPELINE: &str = r#"
resource_types:
- name: outer
  type: inner
  source: {registry: outer.example.com}
- name: inner
  type: mock
  source: {password: ((greeting))}
resources:
- name: r
  type: outer
  tags: [checkers]
  source: {initial_version: v1}
jobs:
- name: j
  plan:
  - get: r
    tags: [gpu]
"#;

async fn steps_carry_their_custom_type_chain_tags_and_a_pod_worthy_handle(backend: Backend) {
    let (local, _work) = local_runtime().await;
    let recording = Arc::new(Recording { inner: local, started: Mutex::new(Vec::new()) });
    let server = TestServer::start_with(backend, server_options_with(recording.clone(), &[])).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "p", PIPELINE).await;
    let (_, watched) = server.trigger_and_watch(&token, "p", "j").await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.output());

    let started = recording.started.lock().unwrap().clone();
    let get = started.iter().find(|spec| spec.metadata.step_type == "get").expect("the get started");
    let expected = ImageSpec::ResourceType(ResourceTypeImage {
        base_type: "mock".into(),
        custom: vec![
            CustomResourceType {
                name: "outer".into(),
                type_: "inner".into(),
                source: serde_json::json!({ "registry": "outer.example.com" }),
                privileged: false,
            },
            CustomResourceType {
                name: "inner".into(),
                type_: "mock".into(),
                source: serde_json::json!({ "password": "hello from creds" }),
                privileged: false,
            },
        ],
    });
    assert_eq!(get.image.as_ref(), Some(&expected));
    assert_eq!(get.tags, ["gpu"], "a step runs where its own tags say");
    let check = started
        .iter()
        .find(|spec| spec.metadata.step_type == "check" && spec.metadata.step_name == "r")
        .expect("the input was checked");
    assert_eq!(check.tags, ["checkers"], "a check runs where its resource's tags say");
    assert_eq!(check.image.as_ref(), Some(&expected));
    for spec in &started {
        let handle = spec.handle.as_str();
        assert!(handle.len() <= 63, "{handle}");
        assert_eq!(StepHandle::parse(handle).as_ref(), Ok(&spec.handle), "{handle} is a DNS label");
    }
    let handles: std::collections::HashSet<&str> = started.iter().map(|s| s.handle.as_str()).collect();
    assert_eq!(handles.len(), started.len(), "every step has a handle of its own");
    server.stop().await;
}

on_both_backends!(steps_carry_their_custom_type_chain_tags_and_a_pod_worthy_handle);
