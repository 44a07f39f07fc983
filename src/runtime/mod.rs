//! Where steps run. The engine knows runtimes only through [`Runtime`]: it
//! describes a step (its image, the artifacts it reads, the directories it
//! produces, the process to run) and gets back an exit status and new
//! artifacts. The local runtime runs processes on this host; a Kubernetes
//! runtime runs pods. Both pass the same runtime test suite.
//!
//! Paths in a [`StepSpec`] (mounts, [`ProcessSpec::dir`]) are relative to the
//! step's working root, a directory the runtime chooses. The process starts
//! in `dir` under that root, so a relative path among its arguments (the
//! resource protocol's `DEST` and `SRC`) names a place under the root.

pub mod local;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// A directory of files a step produced or a user uploaded, owned by the
/// runtime and named by an opaque id (a path locally, a volume in a cluster).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Artifact {
    pub id: String,
}

/// What a step's process runs inside.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSpec {
    /// The image of a built-in or configured resource type (`mock`, `git`,
    /// or a type of `--resource-types-dir`), for check/get/put; resource
    /// processes run `/opt/resource/{check,in,out}` inside it.
    ResourceType(String),
    /// A task's `image_resource`: fetched through its resource type.
    Resource { type_: String, source: Value, params: Value, version: Option<Value> },
    /// A task's `rootfs_uri`.
    RootfsUri(String),
    /// An artifact of the build used as the image (`image:` on a task step).
    Artifact(Artifact),
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
#[derive(Debug, Clone, PartialEq, Default)]
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

/// Everything a runtime needs to run one step's process.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSpec {
    /// Unique name of this run of the step (work dir, pod name).
    pub handle: String,
    pub metadata: StepMetadata,
    pub image: Option<ImageSpec>,
    pub privileged: bool,
    pub limits: Limits,
    pub inputs: Vec<InputMount>,
    pub outputs: Vec<OutputMount>,
    pub caches: Vec<CacheMount>,
    pub process: ProcessSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Receives a step's output as it is produced.
pub trait OutputSink: Send + Sync {
    fn write(&self, stream: OutputStream, chunk: &[u8]);
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

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The step was cancelled (abort or timeout) and its process stopped.
    #[error("interrupted")]
    Interrupted,
    /// The step or request could not be carried out (unknown resource type,
    /// missing executable, a path outside an artifact, ...): an `errored`
    /// step, as opposed to a process that exited non-zero.
    #[error("{0}")]
    Setup(String),
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

/// One worker as `GET /api/v1/workers` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerInfo {
    pub name: String,
    pub platform: String,
    pub resource_types: Vec<String>,
    pub active_containers: u64,
    pub active_volumes: u64,
}

pub type TarGzStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// How large an uploaded artifact may be (`--artifact-upload-max-size`,
/// `--artifact-unpacked-max-size`): what is received, and what it unpacks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    pub max_compressed_bytes: u64,
    pub max_unpacked_bytes: u64,
}

pub trait Runtime: Send + Sync {
    /// Runs one step to completion, or until `cancel` fires (then the
    /// process is stopped and the result is [`RuntimeError::Interrupted`]).
    fn run(
        &self,
        spec: StepSpec,
        sink: Arc<dyn OutputSink>,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, Result<StepOutcome, RuntimeError>>;

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

    fn workers(&self) -> Vec<WorkerInfo>;
}
