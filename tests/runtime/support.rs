//! Helpers for runtime tests: a sink that records, step specs, artifacts
//! from in-memory files, polling with deadlines.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atc::engine::step_process::StepProcess;
use atc::runtime::local::{LocalRuntime, LocalRuntimeOptions};
use atc::runtime::{
    Artifact, ExecIo, ExecOutput, ImageSpec, Limits, OutputOffset, OutputSink, OutputStream, ProcessSpec, Runtime,
    RuntimeError, Stdout, StepHandle, StepMetadata, StepObserver, StepOutcome, StepSpec,
};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

/// Records every chunk, in order, with its stream, and the offset reached.
#[derive(Default)]
pub struct RecordingSink {
    chunks: Mutex<Vec<(OutputStream, Vec<u8>)>>,
    offset: Mutex<OutputOffset>,
}

impl OutputSink for RecordingSink {
    fn write(&self, stream: OutputStream, chunk: &[u8], end: OutputOffset) {
        self.chunks.lock().unwrap().push((stream, chunk.to_vec()));
        *self.offset.lock().unwrap() = end;
    }
}

impl RecordingSink {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn text(&self, stream: OutputStream) -> String {
        let chunks = self.chunks.lock().unwrap();
        let bytes: Vec<u8> =
            chunks.iter().filter(|(s, _)| *s == stream).flat_map(|(_, chunk)| chunk.iter().copied()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn stdout(&self) -> String {
        self.text(OutputStream::Stdout)
    }

    pub fn stderr(&self) -> String {
        self.text(OutputStream::Stderr)
    }

    /// The output offset after the last chunk.
    pub fn offset(&self) -> OutputOffset {
        *self.offset.lock().unwrap()
    }
}

/// Records what a runtime reports about the steps it starts.
#[derive(Default)]
pub struct RecordingObserver {
    pub placed: Mutex<Vec<String>>,
    pub images: Mutex<Vec<String>>,
}

impl StepObserver for RecordingObserver {
    fn placed(&self, worker: &str) {
        self.placed.lock().unwrap().push(worker.to_string());
    }

    fn image_ready(&self, image: &str) {
        self.images.lock().unwrap().push(image.to_string());
    }
}

pub fn observer() -> Arc<RecordingObserver> {
    Arc::new(RecordingObserver::default())
}

/// How long a cancelled step's processes get before they are killed.
pub const GRACE: Duration = Duration::from_secs(1);

/// Runs `spec` to its exit as the engine does (start, attach, stop).
pub async fn run(
    runtime: &dyn Runtime,
    spec: StepSpec,
    sink: Arc<RecordingSink>,
    cancel: CancellationToken,
) -> Result<StepOutcome, RuntimeError> {
    let mut process = StepProcess::new(runtime, sink, cancel);
    process.grace = GRACE;
    process.run(spec).await
}

/// What an exec'd process printed, by stream.
#[derive(Debug, Default)]
pub struct ExecPrinted {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `process` in the step `handle` with `stdin` (if any), reading its
/// output while it runs through a small channel as a slow client would.
pub async fn exec(
    runtime: &dyn Runtime,
    handle: &StepHandle,
    process: ProcessSpec,
    stdin: Option<tokio::sync::mpsc::Receiver<Bytes>>,
) -> (Result<i32, RuntimeError>, ExecPrinted) {
    let (output, mut chunks) = tokio::sync::mpsc::channel(1);
    let read = async move {
        let mut printed = ExecPrinted::default();
        while let Some(ExecOutput { stream, chunk }) = chunks.recv().await {
            let text = String::from_utf8_lossy(&chunk);
            match stream {
                OutputStream::Stdout => printed.stdout.push_str(&text),
                OutputStream::Stderr => printed.stderr.push_str(&text),
            }
        }
        printed
    };
    tokio::join!(runtime.exec(handle, process, ExecIo { stdin, output }), read)
}

static HANDLES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A handle no other step of this test process has.
pub fn new_handle() -> StepHandle {
    let n = HANDLES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    StepHandle::parse(&format!("test-{}-{n}", std::process::id())).unwrap()
}

/// A step running `sh -c script` in its root, output streamed.
pub fn shell_step(script: &str) -> StepSpec {
    StepSpec {
        handle: new_handle(),
        metadata: StepMetadata {
            team: "main".into(),
            step_type: "task".into(),
            step_name: "t".into(),
            ..Default::default()
        },
        image: None,
        privileged: false,
        limits: Limits::default(),
        tags: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        caches: Vec::new(),
        process: sh_process(script),
        sidecars: Vec::new(),
        trace: None,
    }
}

/// `sh -c script` in the step's working directory, output streamed.
pub fn sh_process(script: &str) -> ProcessSpec {
    ProcessSpec {
        path: "sh".into(),
        args: vec!["-c".into(), script.into()],
        dir: String::new(),
        user: None,
        env: Vec::new(),
        stdin: None,
        stdout: Stdout::Stream,
    }
}

/// How steps of the runtime under test run `sh -c SCRIPT`: the image that
/// gives them a POSIX shell, if the runtime needs one.
pub struct Shell {
    pub image: Option<ImageSpec>,
}

impl Shell {
    /// A step running `sh -c script` in its root, output streamed.
    pub fn step(&self, script: &str) -> StepSpec {
        StepSpec { image: self.image.clone(), ..shell_step(script) }
    }
}

/// A gzipped tarball of `files` (path, content, mode).
pub fn tgz(files: &[(&str, &str, u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, content, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(*mode);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, content.as_bytes()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// Generous limits, for uploads that are not about limits.
pub const UPLOAD_LIMITS: atc::runtime::UploadLimits =
    atc::runtime::UploadLimits { max_compressed_bytes: 1 << 30, max_unpacked_bytes: 1 << 30 };

pub async fn import(runtime: &dyn Runtime, tgz: Vec<u8>) -> Artifact {
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(tgz))]).boxed();
    runtime.import_artifact(stream, UPLOAD_LIMITS).await.unwrap()
}

/// The files of an exported artifact: path -> (content, mode), symlinks as "-> target".
pub async fn export(runtime: &dyn Runtime, artifact: &Artifact) -> BTreeMap<String, (String, u32)> {
    let mut stream = runtime.export_artifact(artifact).await.unwrap();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().trim_start_matches("./").to_string();
        let mode = entry.header().mode().unwrap() & 0o777;
        match entry.header().entry_type() {
            tar::EntryType::Regular => {
                let mut content = String::new();
                entry.read_to_string(&mut content).unwrap();
                files.insert(path, (content, mode));
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name().unwrap().unwrap().to_string_lossy().into_owned();
                files.insert(path, (format!("-> {target}"), 0));
            }
            _ => {}
        }
    }
    files
}

pub async fn read(runtime: &dyn Runtime, artifact: &Artifact, path: &str) -> String {
    String::from_utf8(runtime.read_file(artifact, path).await.unwrap()).unwrap()
}

/// Polls `condition` every 20 ms until it holds or `limit` passes.
pub async fn eventually<F: Future<Output = bool>>(limit: Duration, mut condition: impl FnMut() -> F) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A local runtime in a temporary work dir, removed on drop.
pub struct LocalFixture {
    pub runtime: LocalRuntime,
    pub dir: tempfile::TempDir,
    /// Other directories the test made, removed with the fixture.
    pub other_dirs: Vec<tempfile::TempDir>,
}

impl LocalFixture {
    pub async fn new() -> Self {
        Self::with_types_dir(None).await
    }

    pub async fn with_types_dir(types_dir: Option<std::path::PathBuf>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut options = LocalRuntimeOptions::new(dir.path().join("work"));
        options.atc_executable = Some(env!("CARGO_BIN_EXE_atc").into());
        options.resource_types_dir = types_dir;
        options.stop_grace_period = Duration::from_secs(1);
        let runtime = LocalRuntime::new(options).await.unwrap();
        LocalFixture { runtime, dir, other_dirs: Vec::new() }
    }
}

impl LocalFixture {
    /// The local runtime runs steps on the host, whose `sh` needs no image.
    pub fn shell(&self) -> Shell {
        Shell { image: None }
    }
}

pub async fn local_runtime() -> LocalFixture {
    LocalFixture::new().await
}
