//! Where steps run. The engine knows runtimes only through [`Runtime`]: it
//! describes a step (its image, the artifacts it reads, the directories it
//! produces, the process to run), starts it, and attaches to it to follow
//! its output and wait for its exit status and new artifacts. A started
//! step outlives the atc process that started it: after a restart the
//! engine attaches again, from the output offset it had reached. The local
//! runtime runs processes on this host; a Kubernetes runtime runs pods.
//! Both pass the same runtime test suite.
//!
//! Paths in a [`StepSpec`] (mounts, [`ProcessSpec::dir`]) are relative to the
//! step's working root, a directory the runtime chooses. The process starts
//! in `dir` under that root, so a relative path among its arguments (the
//! resource protocol's `DEST` and `SRC`) names a place under the root.

mod image_metadata;
pub mod k8s;
pub mod local;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use serde_json::Value;

pub use self::image_metadata::ImageMetadata;

/// A directory of files a step produced or a user uploaded, owned by the
/// runtime and named by an opaque id (a path locally, a volume in a cluster).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Artifact {
    pub id: String,
}

/// What a step's process runs inside.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSpec {
    /// The image of a resource type, for check/get/put; resource processes
    /// run `/opt/resource/{check,in,out}` inside it.
    ResourceType(ResourceTypeImage),
    /// A task's `image_resource`: fetched through its resource type.
    Resource { type_: String, source: Value, params: Value, version: Option<Value> },
    /// A task's `rootfs_uri`.
    RootfsUri(String),
    /// An artifact of the build used as the image (`image:` on a task step).
    Artifact(Artifact),
}

impl ImageSpec {
    /// The image of a base resource type the runtime knows itself.
    pub fn resource_type(base_type: &str) -> ImageSpec {
        ImageSpec::ResourceType(ResourceTypeImage { base_type: base_type.to_string(), custom: Vec::new() })
    }
}

/// A resource type as far as a runtime must know it to run its image: the
/// base type it comes down to (built in, or from `--resource-types-dir`,
/// or a worker's), and the pipeline's custom types on the way, nearest
/// first. A runtime that runs images takes the image from the nearest
/// custom type's source; the local runtime runs the base type's
/// executables.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceTypeImage {
    pub base_type: String,
    pub custom: Vec<CustomResourceType>,
}

/// One of a pipeline's `resource_types`, its `source` interpolated.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomResourceType {
    pub name: String,
    /// The type it is itself of.
    pub type_: String,
    pub source: Value,
    pub privileged: bool,
}

/// An artifact laid out at `path` (relative to the step's working root).
/// Writes by the step never reach the artifact itself.
#[derive(Debug, Clone, PartialEq)]
pub struct InputMount {
    pub artifact: Artifact,
    pub path: String,
}

/// A directory (relative to the step's working root) captured as a new
/// artifact named `name` when the process exits.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputMount {
    pub name: String,
    pub path: String,
}

/// A directory kept between runs of the same step: `key` identifies it
/// (team, pipeline, job, step and path), `path` is where the step sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheMount {
    pub key: String,
    pub path: String,
}

/// What to do with the process's standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// Stream it to the sink like stderr (tasks).
    Stream,
    /// Return it in [`StepOutcome::stdout`] (the resource protocol's JSON
    /// response); stderr still streams.
    Capture,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSpec {
    pub path: String,
    pub args: Vec<String>,
    /// Working directory relative to the step's working root.
    pub dir: String,
    pub user: Option<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    pub stdout: Stdout,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Limits {
    /// CPU shares.
    pub cpu: Option<u64>,
    /// Bytes of memory.
    pub memory: Option<u64>,
}

/// Facts about the step for naming, labels and logs; never behaviour.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct StepMetadata {
    pub team: String,
    pub pipeline: Option<String>,
    pub job: Option<String>,
    pub build_id: Option<i64>,
    pub build_name: Option<String>,
    /// `get`, `put`, `task`, `check`, ...
    pub step_type: String,
    pub step_name: String,
}

/// A name that [`StepHandle::parse`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{name}' is not a step handle (at most {} lowercase letters, digits and '-', starting with a letter and \
     ending with a letter or digit)",
    StepHandle::MAX_LEN
)]
pub struct InvalidStepHandle {
    pub name: String,
}

/// A step's name on a runtime: what [`Runtime::start`] returns and every
/// later call names the step by. Unique and deterministic per build and
/// step (the engine saves it with the step to attach again after a
/// restart), at most 63 characters of lowercase letters, digits and `-`,
/// starting with a letter and ending with a letter or digit: it can be a
/// pod's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepHandle(String);

impl StepHandle {
    /// Longest handle: a DNS label.
    pub const MAX_LEN: usize = 63;

    /// Checks that `name` is a valid handle.
    pub fn parse(name: &str) -> Result<StepHandle, InvalidStepHandle> {
        let valid_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let starts = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        let ends = name.bytes().last().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if name.len() > Self::MAX_LEN || !valid_chars || !starts || !ends {
            return Err(InvalidStepHandle { name: name.to_string() });
        }
        Ok(StepHandle(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StepHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The W3C trace context of the step's span, which its processes continue
/// (`TRACEPARENT`/`TRACESTATE` locally, pod annotations in a cluster).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceContext {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

/// Everything a runtime needs to run one step's process.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSpec {
    /// The step's name on the runtime (work dir, pod name).
    pub handle: StepHandle,
    pub metadata: StepMetadata,
    pub image: Option<ImageSpec>,
    pub privileged: bool,
    pub limits: Limits,
    /// Worker tags the step asks for (`tags:`); a runtime with one kind of
    /// worker ignores them.
    pub tags: Vec<String>,
    pub inputs: Vec<InputMount>,
    pub outputs: Vec<OutputMount>,
    pub caches: Vec<CacheMount>,
    pub process: ProcessSpec,
    /// Containers beside the process for its whole life, sharing its
    /// network; a runtime without containers refuses a step that has any.
    pub sidecars: Vec<Sidecar>,
    /// The step's span, continued by its processes; `None` when not traced.
    pub trace: Option<TraceContext>,
}

/// A container that runs beside a step's process (a task's `sidecars:`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sidecar {
    /// Unique in the step; a DNS label.
    pub name: String,
    /// An image reference.
    pub image: String,
    /// Instead of the image's entrypoint, when not empty.
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub ports: Vec<SidecarPort>,
    /// Kubernetes quantities by resource name.
    pub limits: BTreeMap<String, String>,
    pub requests: BTreeMap<String, String>,
    /// The image's own when empty.
    pub working_dir: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SidecarPort {
    pub port: u16,
    pub name: Option<String>,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// How far into a step's output a reader has got: bytes of each stream.
/// Streamed output is kept by the runtime until the step is stopped, so an
/// attach can resume from any offset it reached before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputOffset {
    pub stdout: u64,
    pub stderr: u64,
}

impl OutputOffset {
    /// The offset after `len` more bytes of `stream`.
    pub fn advanced(self, stream: OutputStream, len: usize) -> OutputOffset {
        match stream {
            OutputStream::Stdout => OutputOffset { stdout: self.stdout + len as u64, ..self },
            OutputStream::Stderr => OutputOffset { stderr: self.stderr + len as u64, ..self },
        }
    }
}

/// Receives a step's output as it is produced.
pub trait OutputSink: Send + Sync {
    /// `chunk` of `stream`; `end` is the offset of the output right after it.
    fn write(&self, stream: OutputStream, chunk: &[u8], end: OutputOffset);
}

/// What a runtime reports about a step it starts besides its output; the
/// engine's step delegate turns each report into the build's event, the
/// step span's event and a log line.
pub trait StepObserver: Send + Sync {
    /// The step was placed on `worker` (a [`WorkerInfo::name`]).
    fn placed(&self, worker: &str);
    /// The step's image is ready to run it; `image` says which it is and
    /// how it was obtained.
    fn image_ready(&self, image: &str);
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    pub exit_code: i32,
    /// Artifacts captured from [`StepSpec::outputs`], by output name.
    pub outputs: BTreeMap<String, Artifact>,
    /// The captured standard output with [`Stdout::Capture`].
    pub stdout: Option<Vec<u8>>,
}

/// The largest file [`Runtime::read_file`] reads. What steps read is a
/// configuration, a var file or a var, held in memory whole: no bigger
/// than a configuration the API accepts.
pub const MAX_READ_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Why a step could not be run or finished. Each kind says whether trying
/// again may help ([`RuntimeError::is_transient`]).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The step was stopped (abort, timeout) before it exited.
    #[error("interrupted")]
    Interrupted,
    /// The step or request could not be carried out (unknown resource type,
    /// missing executable, a path outside an artifact, ...): an `errored`
    /// step, as opposed to a process that exited non-zero.
    #[error("{0}")]
    Setup(String),
    /// The step's image does not exist or cannot be pulled.
    #[error("image {image}: {reason}")]
    ImageUnavailable { image: String, reason: String },
    /// The step's process was killed for using more memory than allowed.
    #[error("the step ran out of memory{}", limit_suffix(*.limit_bytes))]
    OutOfMemory { limit_bytes: Option<u64> },
    /// The step's worker or pod went away (evicted, node lost): the step
    /// did not finish and cannot be attached to any more.
    #[error("the step was lost: {0}")]
    Lost(String),
    /// The step did not start within the time the runtime allows.
    #[error("the step did not start in time: {0}")]
    TimedOut(String),
    /// The runtime could not be reached or refused for now (an API server
    /// restarting, a full node): the same request may succeed later.
    #[error("the runtime is unavailable: {0}")]
    Unavailable(String),
    /// The program an [`Runtime::exec`] names does not exist in the step
    /// (`fly intercept` then tries another shell).
    #[error("cannot run {0}: executable file not found")]
    ExecutableNotFound(String),
    /// No step has this handle (never started, or stopped and removed).
    #[error("no step {0} on this runtime")]
    UnknownStep(StepHandle),
    /// A step of this handle was started already: a step runs once.
    #[error("step {0} was started already")]
    AlreadyStarted(StepHandle),
    /// With [`Stdout::Capture`], the process printed more than the runtime
    /// keeps; it was stopped. Resource responses are small JSON documents.
    #[error("the process printed more than {limit_bytes} bytes on stdout; it was stopped")]
    StdoutTooLarge { limit_bytes: usize },
    /// An upload was larger than [`UploadLimits`] allow, packed or unpacked;
    /// what was stored of it is removed.
    #[error("{0}")]
    UploadTooLarge(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn limit_suffix(limit: Option<u64>) -> String {
    limit.map(|bytes| format!(" (limit {bytes} bytes)")).unwrap_or_default()
}

impl RuntimeError {
    /// Whether the same request may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, RuntimeError::Unavailable(_) | RuntimeError::TimedOut(_))
    }
}

/// One worker as `GET /api/v1/workers` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerInfo {
    pub name: String,
    pub platform: String,
    pub tags: Vec<String>,
    pub resource_types: Vec<String>,
    pub active_containers: u64,
    pub active_volumes: u64,
}

/// A step a runtime has (running, or exited and not yet stopped), as
/// `fly containers` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepInfo {
    pub handle: StepHandle,
    /// The worker it runs on ([`WorkerInfo::name`]).
    pub worker: String,
    pub metadata: StepMetadata,
}

pub type TarGzStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// How large an uploaded artifact may be (`--artifact-upload-max-size`,
/// `--artifact-unpacked-max-size`): what is received, and what it unpacks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    pub max_compressed_bytes: u64,
    pub max_unpacked_bytes: u64,
}

/// What an [`Runtime::exec`]'d process reads and where its output goes.
pub struct ExecIo {
    /// Chunks for its stdin; it is closed when the sender is dropped.
    pub stdin: Option<tokio::sync::mpsc::Receiver<Bytes>>,
    /// Its output as it comes. A bounded channel: a reader slower than the
    /// process (a remote `fly intercept`) slows it down instead of having
    /// its output pile up in memory. Output that finds the receiver gone is
    /// dropped.
    pub output: tokio::sync::mpsc::Sender<ExecOutput>,
}

/// A chunk of an [`Runtime::exec`]'d process's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stream: OutputStream,
    pub chunk: Bytes,
}

/// A step's life on a runtime: [`start`](Runtime::start) it, then
/// [`attach`](Runtime::attach) (again after an atc restart) until it exits,
/// and [`stop`](Runtime::stop) it when its outcome is recorded or it must
/// end early. Artifacts are the runtime's too: imported, exported, read
/// and released here.
pub trait Runtime: Send + Sync {
    /// Lays out and starts the step's process; returns once it runs.
    /// Starting a handle that exists already is an error: a step runs once.
    /// Where it was placed and the image it runs in go to `observer`.
    fn start(&self, spec: StepSpec, observer: Arc<dyn StepObserver>)
    -> BoxFuture<'_, Result<StepHandle, RuntimeError>>;

    /// Streams the step's output after `since` into `sink` as it comes, and
    /// waits for the exit. Its outputs are captured on the first attach to
    /// see the exit; any attach after that answers the same outcome.
    fn attach(
        &self,
        handle: &StepHandle,
        sink: Arc<dyn OutputSink>,
        since: OutputOffset,
    ) -> BoxFuture<'_, Result<StepOutcome, RuntimeError>>;

    /// Runs another process in a running step's environment (`fly
    /// intercept`) and answers its exit code. Dropping the future stops the
    /// process.
    fn exec(&self, handle: &StepHandle, process: ProcessSpec, io: ExecIo) -> BoxFuture<'_, Result<i32, RuntimeError>>;

    /// Stops the step's processes if they still run, those [`exec`](Runtime::exec)'d into
    /// it too (`grace` between a polite and a forced stop), and removes the
    /// step. Artifacts its
    /// outcome named stay. Stopping a step that is gone is no error.
    fn stop(&self, handle: &StepHandle, grace: std::time::Duration) -> BoxFuture<'_, Result<(), RuntimeError>>;

    /// The steps this runtime has, running or exited, not yet stopped.
    fn list(&self) -> BoxFuture<'_, Result<Vec<StepInfo>, RuntimeError>>;

    /// Stores a gzipped tarball (as `fly execute` uploads) as an artifact.
    /// It comes from a user: beyond `limits` it is refused
    /// ([`RuntimeError::UploadTooLarge`]), and entries that would land
    /// outside the artifact or keep setuid/setgid bits are refused or dropped.
    fn import_artifact(&self, tgz: TarGzStream, limits: UploadLimits) -> BoxFuture<'_, Result<Artifact, RuntimeError>>;

    /// Streams an artifact as a gzipped tarball (as `fly execute -o` downloads).
    fn export_artifact(&self, artifact: &Artifact) -> BoxFuture<'_, Result<TarGzStream, RuntimeError>>;

    /// Reads one regular file of an artifact (task `file:`, `load_var`,
    /// `set_pipeline`) of at most [`MAX_READ_FILE_BYTES`]; anything else is
    /// a [`RuntimeError::Setup`].
    fn read_file(&self, artifact: &Artifact, path: &str) -> BoxFuture<'_, Result<Vec<u8>, RuntimeError>>;

    /// Frees artifacts nothing refers to any more.
    fn release(&self, artifacts: Vec<Artifact>) -> BoxFuture<'_, Result<(), RuntimeError>>;

    /// Deletes the caches with these [`CacheMount::key`]s, where present. A
    /// cache a running step holds is deleted once it is back (the caller
    /// asks again).
    fn remove_caches(&self, keys: Vec<String>) -> BoxFuture<'_, Result<(), RuntimeError>>;

    /// Where steps can run now.
    fn workers(&self) -> BoxFuture<'_, Vec<WorkerInfo>>;

    /// The builds that have storage of their own on this runtime (a claim
    /// per build on Kubernetes; none locally).
    fn build_storage(&self) -> BoxFuture<'_, Result<Vec<i64>, RuntimeError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Removes a build's own storage, with every artifact still on it: the
    /// collector asks once the build ended and nothing of it is kept.
    fn remove_build_storage(&self, _build_id: i64) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(async { Ok(()) })
    }
}
