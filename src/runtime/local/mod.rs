//! The local runtime: each step is a process group on this host, in a work
//! dir of its own under `--work-dir`; artifacts are directories there.
//!
//! It has no containers, and says so in the step's log where that matters:
//! a task's image is not used (its `metadata.json` environment is), `user`
//! needs atc to run as root, `container_limits` are not enforced. A task
//! with `sidecars:` is refused: they are images. Resource
//! types are `--resource-types-dir` scripts or built into atc.

pub(crate) mod artifacts;
mod exec;
mod fs;
mod images;
mod layout;
mod process;
mod step_files;
pub(crate) mod unpack;
mod user;
mod watch;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub use self::fs::{PathLeavesBase, join_relative};

use self::artifacts::blocking;
use self::images::ResourceTypes;
use self::layout::WorkDir;
use self::step_files::{FinishedStep, SavedStep, StepFiles};
use self::user::UserChoice;
use self::watch::DirWatcher;
use super::{
    Artifact, ExecIo, OutputOffset, OutputSink, OutputStream, ProcessSpec, Runtime, RuntimeError, StepHandle, StepInfo,
    StepObserver, StepOutcome, StepSpec, TarGzStream, TraceContext, UploadLimits, WorkerInfo,
};
use crate::telemetry::spans::ProcessSpan;

/// How a [`LocalRuntime`] is set up.
#[derive(Debug, Clone)]
pub struct LocalRuntimeOptions {
    /// Holds step work dirs, artifacts and caches (`--work-dir`).
    pub work_dir: PathBuf,
    /// `DIR/TYPE/{check,in,out}` define resource type `TYPE`
    /// (`--resource-types-dir`). Read once, when the runtime is created.
    pub resource_types_dir: Option<PathBuf>,
    /// The `atc` executable, which runs the built-in resource types.
    /// `None`: this process's own executable.
    pub atc_executable: Option<PathBuf>,
    /// Between SIGTERM and SIGKILL when a step is cancelled.
    pub stop_grace_period: Duration,
    /// Most bytes of stdout kept with [`super::Stdout::Capture`].
    pub capture_limit: usize,
}

impl LocalRuntimeOptions {
    pub const DEFAULT_STOP_GRACE_PERIOD: Duration = Duration::from_secs(10);
    pub const DEFAULT_CAPTURE_LIMIT: usize = 10 * 1024 * 1024;

    pub fn new(work_dir: PathBuf) -> Self {
        LocalRuntimeOptions {
            work_dir,
            resource_types_dir: None,
            atc_executable: None,
            stop_grace_period: Self::DEFAULT_STOP_GRACE_PERIOD,
            capture_limit: Self::DEFAULT_CAPTURE_LIMIT,
        }
    }
}

pub struct LocalRuntime {
    work: WorkDir,
    types: ResourceTypes,
    stop_grace_period: Duration,
    capture_limit: usize,
    worker_name: String,
    artifacts: Arc<AtomicU64>,
    watcher: DirWatcher,
    /// `runtime.process` spans of the steps this process started, ended
    /// when their exit is seen.
    spans: Mutex<HashMap<StepHandle, ProcessSpan>>,
    /// Held while a step's exit is turned into its outcome, so that two
    /// attaches capture its outputs once.
    finishing: tokio::sync::Mutex<()>,
    /// Cancelled when the step is stopped: its exec'd processes stop too.
    execs: Mutex<HashMap<StepHandle, CancellationToken>>,
}

/// How long an attach waits for a sign of life before looking anyway (a
/// lost inotify event, a process that died without its shell).
const LOOK_AGAIN: Duration = Duration::from_secs(1);
const READ_CHUNK: usize = 64 * 1024;

impl LocalRuntime {
    /// Creates the work dir and reads the resource types directory.
    pub async fn new(options: LocalRuntimeOptions) -> Result<Self, RuntimeError> {
        let atc_executable = match options.atc_executable {
            Some(path) => path,
            None => std::env::current_exe().map_err(|err| {
                RuntimeError::Setup(format!("cannot find atc's own executable to run built-in resource types: {err}"))
            })?,
        };
        let (work_dir, types_dir) = (options.work_dir.clone(), options.resource_types_dir.clone());
        let (work, types, artifact_count) = blocking(move || {
            let work = WorkDir::create(work_dir.clone()).map_err(|err| {
                RuntimeError::Setup(format!("cannot create the work dir {}: {err}", work_dir.display()))
            })?;
            let types = ResourceTypes::scan(types_dir.as_deref(), atc_executable)
                .map_err(|err| RuntimeError::Setup(err.to_string()))?;
            let count = work.count_artifacts();
            Ok((work, types, count))
        })
        .await?;
        Ok(LocalRuntime {
            work,
            types,
            stop_grace_period: options.stop_grace_period,
            capture_limit: options.capture_limit,
            worker_name: hostname(),
            artifacts: Arc::new(AtomicU64::new(artifact_count)),
            watcher: DirWatcher::start(),
            spans: Mutex::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            finishing: tokio::sync::Mutex::new(()),
        })
    }

    pub fn work_dir(&self) -> &std::path::Path {
        self.work.path()
    }

    pub fn resource_types(&self) -> Vec<String> {
        self.types.names()
    }

    /// The grace period a step gets when atc stops it on its own account.
    pub fn stop_grace_period(&self) -> Duration {
        self.stop_grace_period
    }

    async fn start_step(&self, spec: StepSpec, observer: Arc<dyn StepObserver>) -> Result<StepHandle, RuntimeError> {
        // A sidecar is its image: run on this host, its command would find
        // the host's programs instead (or none), and nothing would keep it
        // apart from other steps' sidecars on the same ports. Refused rather
        // than run half-way.
        if let Some(sidecar) = spec.sidecars.first() {
            return Err(RuntimeError::Setup(format!(
                "sidecar '{}': the local runtime runs no containers, so it cannot run sidecars; \
                 run atc with the Kubernetes runtime (--kubernetes-namespace) for tasks with sidecars:",
                sidecar.name
            )));
        }
        let work = self.work.clone();
        let types = self.types.clone();
        let handle = spec.handle.clone();
        let (launch, pid, image) = blocking(move || {
            let files = work.step(&spec.handle);
            let program = images::resolve(spec.image.as_ref(), &spec.process.path, &types, |artifact| {
                work.artifact_path(artifact)
            })?;
            let mut notices: Vec<String> = program.notice.iter().cloned().collect();
            if spec.limits.cpu.is_some() || spec.limits.memory.is_some() {
                notices.push("atc: container_limits are not enforced by the local runtime".into());
            }
            let requested_user = spec.process.user.clone().or_else(|| program.image_user.clone().filter(|_| is_root()));
            let user = match user::choose(requested_user.as_deref()) {
                UserChoice::Current => None,
                UserChoice::Switch(user) => Some(user),
                UserChoice::Unavailable(why) => {
                    notices.push(why);
                    None
                }
            };
            let inputs = spec
                .inputs
                .iter()
                .map(|input| Ok((input.clone(), work.artifact_path(&input.artifact)?)))
                .collect::<Result<Vec<_>, RuntimeError>>()?;
            layout::prepare(&work, &files, &inputs, &spec.caches, &spec.outputs, &spec.process.dir, user.as_ref())?;
            let started = (|| {
                // Whose HOME and USER the process gets (reads the password database).
                let account = user.clone().or_else(user::current_user);
                let working_dir = fs::join_relative(&files.root(), &spec.process.dir)
                    .map_err(|err| RuntimeError::Setup(err.to_string()))?;
                let env =
                    process_env(account, &files.tmp(), &program.image_env, &spec.process.env, spec.trace.as_ref());
                let record = SavedStep::new(
                    spec.metadata.clone(),
                    &spec.outputs,
                    &spec.caches,
                    &spec.process,
                    env.clone(),
                    user.as_ref().map(|u| u.name.clone()),
                );
                files.save_record(&record)?;
                if let Some(stdin) = &spec.process.stdin {
                    std::fs::write(files.stdin(), stdin)?;
                }
                let notices: String = notices.iter().map(|notice| format!("{notice}\n")).collect();
                std::fs::write(files.stderr(), notices)?;
                let launch = process::Launch {
                    program: program_path(&program.program, &working_dir),
                    name: spec.process.path.clone(),
                    args: program.leading_args.iter().cloned().chain(spec.process.args.iter().cloned()).collect(),
                    dir: working_dir,
                    env,
                    user,
                };
                let group = process::spawn(&launch, &files)?;
                Ok((launch, group.pgid, program.image))
            })();
            if started.is_err() {
                let _ = layout::remove(&work, &files, &spec.caches);
            }
            started
        })
        .await?;
        let span = process::process_span(&launch, pid);
        self.spans.lock().unwrap_or_else(|p| p.into_inner()).insert(handle.clone(), span);
        if let Some(image) = &image {
            observer.image_ready(image);
        }
        observer.placed(&self.worker_name);
        Ok(handle)
    }

    async fn attach_step(
        &self,
        handle: &StepHandle,
        sink: Arc<dyn OutputSink>,
        since: OutputOffset,
    ) -> Result<StepOutcome, RuntimeError> {
        let files = self.work.step(handle);
        let record = {
            let files = files.clone();
            blocking(move || if files.exists() { Ok(Some(files.record()?)) } else { Ok(None) }).await?
        };
        let record = record.ok_or_else(|| RuntimeError::UnknownStep(handle.clone()))?;
        let mut watch = self.watcher.watch(&files.base);
        let mut reader = OutputReader { files: files.clone(), offset: since, capture: record.capture_stdout };
        loop {
            // The exit code is looked at before the output is read, so the
            // last read after it sees everything the process wrote.
            let exit_code = files.exit_code()?;
            reader.forward(sink.as_ref())?;
            if record.capture_stdout && reader.captured_len()? > self.capture_limit as u64 {
                self.stop_process(&files).await?;
                return Err(RuntimeError::StdoutTooLarge { limit_bytes: self.capture_limit });
            }
            if let Some(exit_code) = exit_code {
                return self.finish(handle, &files, &record, exit_code).await;
            }
            if !self.is_running(&files)? {
                // Killed with its shell (a stop, a reboot): it will never exit.
                return Err(RuntimeError::Interrupted);
            }
            watch.changed(LOOK_AGAIN).await;
        }
    }

    fn is_running(&self, files: &StepFiles) -> Result<bool, RuntimeError> {
        // The exit code may have been written since it was last looked at.
        Ok(files.process()?.is_some_and(process::is_alive) || files.exit_code()?.is_some())
    }

    /// The outcome of an exited step: its outputs captured and its caches
    /// returned the first time, the same answer every time after.
    async fn finish(
        &self,
        handle: &StepHandle,
        files: &StepFiles,
        record: &SavedStep,
        exit_code: i32,
    ) -> Result<StepOutcome, RuntimeError> {
        let _finishing = self.finishing.lock().await;
        if let Some(span) = self.spans.lock().unwrap_or_else(|p| p.into_inner()).remove(handle) {
            span.end(Some(exit_code));
        }
        let (work, files, record) = (self.work.clone(), files.clone(), record.clone());
        let capture_limit = self.capture_limit;
        let counter = self.artifacts.clone();
        blocking(move || {
            let finished = match files.finished()? {
                Some(finished) => finished,
                None => {
                    let captured = layout::capture(&work, &files, &record.caches(), &record.outputs())?;
                    counter.fetch_add(captured.len() as u64, Ordering::Relaxed);
                    let outputs = captured.into_iter().map(|(name, artifact)| (name, artifact.id)).collect();
                    let finished = FinishedStep { exit_code, outputs };
                    files.save_finished(&finished)?;
                    finished
                }
            };
            let stdout = if record.capture_stdout {
                let bytes = std::fs::read(files.stdout())?;
                if bytes.len() > capture_limit {
                    return Err(RuntimeError::StdoutTooLarge { limit_bytes: capture_limit });
                }
                Some(bytes)
            } else {
                None
            };
            Ok(StepOutcome {
                exit_code: finished.exit_code,
                outputs: finished.outputs.into_iter().map(|(name, id)| (name, Artifact { id })).collect(),
                stdout,
            })
        })
        .await
    }

    async fn stop_process(&self, files: &StepFiles) -> Result<(), RuntimeError> {
        if let Some(group) = files.process()? {
            process::stop(group, self.stop_grace_period).await;
        }
        Ok(())
    }

    async fn stop_step(&self, handle: &StepHandle, grace: Duration) -> Result<(), RuntimeError> {
        let files = self.work.step(handle);
        if !files.exists() {
            return Ok(());
        }
        if files.exit_code()?.is_none()
            && let Some(group) = files.process()?
        {
            process::stop(group, grace).await;
        }
        if let Some(span) = self.spans.lock().unwrap_or_else(|p| p.into_inner()).remove(handle) {
            span.end(None);
        }
        if let Some(execs) = self.execs.lock().unwrap_or_else(|p| p.into_inner()).remove(handle) {
            execs.cancel();
        }
        let _finishing = self.finishing.lock().await;
        let work = self.work.clone();
        blocking(move || {
            let caches = files.record().map(|record| record.caches()).unwrap_or_default();
            layout::remove(&work, &files, &caches)
        })
        .await
    }

    async fn exec_in_step(&self, handle: &StepHandle, spec: ProcessSpec, io: ExecIo) -> Result<i32, RuntimeError> {
        let files = self.work.step(handle);
        let record = {
            let files = files.clone();
            blocking(move || if files.exists() { Ok(Some(files.record()?)) } else { Ok(None) }).await?
        };
        let record = record.ok_or_else(|| RuntimeError::UnknownStep(handle.clone()))?;
        let dir_spec = if spec.dir.is_empty() { record.dir.clone() } else { spec.dir.clone() };
        let dir = fs::join_relative(&files.root(), &dir_spec).map_err(|err| RuntimeError::Setup(err.to_string()))?;
        // Checked here so that a failing spawn's "not found" means the program.
        if !tokio::fs::metadata(&dir).await.is_ok_and(|meta| meta.is_dir()) {
            return Err(RuntimeError::Setup(format!("the step has no directory '{dir_spec}'")));
        }
        let mut env = record.env.clone();
        env.extend(spec.env.iter().cloned());
        let user = match spec.user.clone().or(record.user.clone()) {
            Some(name) => match user::choose(Some(&name)) {
                UserChoice::Switch(user) => Some(user),
                UserChoice::Current => None,
                UserChoice::Unavailable(why) => return Err(RuntimeError::Setup(why)),
            },
            None => None,
        };
        let stop = self.execs.lock().unwrap_or_else(|p| p.into_inner()).entry(handle.clone()).or_default().clone();
        let program = PathBuf::from(&spec.path);
        let exec = exec::Exec { program, args: spec.args, dir, env, user, stop, grace: self.stop_grace_period };
        exec::run(exec, io).await
    }
}

/// Reads a step's output files from an offset on.
struct OutputReader {
    files: StepFiles,
    offset: OutputOffset,
    /// Standard output is the result, not streamed.
    capture: bool,
}

impl OutputReader {
    /// Hands the sink what was written since the last call.
    fn forward(&mut self, sink: &dyn OutputSink) -> Result<(), RuntimeError> {
        if !self.capture {
            self.forward_stream(sink, OutputStream::Stdout)?;
        }
        self.forward_stream(sink, OutputStream::Stderr)
    }

    fn forward_stream(&mut self, sink: &dyn OutputSink, stream: OutputStream) -> Result<(), RuntimeError> {
        use std::io::{Read, Seek, SeekFrom};
        let (path, position) = match stream {
            OutputStream::Stdout => (self.files.stdout(), self.offset.stdout),
            OutputStream::Stderr => (self.files.stderr(), self.offset.stderr),
        };
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        file.seek(SeekFrom::Start(position))?;
        let mut buffer = vec![0u8; READ_CHUNK];
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                return Ok(());
            }
            self.offset = self.offset.advanced(stream, read);
            sink.write(stream, &buffer[..read], self.offset);
        }
    }

    fn captured_len(&self) -> Result<u64, RuntimeError> {
        match std::fs::metadata(self.files.stdout()) {
            Ok(metadata) => Ok(metadata.len()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(err) => Err(err.into()),
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `run.path` relative with a slash (`repo/ci/test.sh`) is relative to the
/// working directory, as in a container; a bare name is looked up in PATH.
fn program_path(program: &std::path::Path, working_dir: &std::path::Path) -> PathBuf {
    if program.is_relative() && program.components().count() > 1 {
        working_dir.join(program)
    } else {
        program.to_path_buf()
    }
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process sees only what the step gives it, on top of a minimal base:
/// atc's own environment holds secrets (database password, keys) and never
/// reaches a step.
fn process_env(
    account: Option<user::HostUser>,
    tmp: &std::path::Path,
    image_env: &[(String, String)],
    step_env: &[(String, String)],
    trace: Option<&TraceContext>,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_string(), std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string())),
        ("TMPDIR".to_string(), tmp.to_string_lossy().into_owned()),
    ];
    if let Some(account) = account {
        env.push(("HOME".into(), account.home));
        env.push(("USER".into(), account.name.clone()));
        env.push(("LOGNAME".into(), account.name));
    }
    env.extend(image_env.iter().cloned());
    env.extend(step_env.iter().cloned());
    // The OpenTelemetry environment carrier: the process continues the step's trace.
    if let Some(trace) = trace {
        env.push(("TRACEPARENT".into(), trace.traceparent.clone()));
        if let Some(state) = &trace.tracestate {
            env.push(("TRACESTATE".into(), state.clone()));
        }
    }
    env
}

fn hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it when the name fits.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    let name = if result == 0 {
        let end = buffer.iter().position(|&byte| byte == 0).unwrap_or(buffer.len());
        String::from_utf8_lossy(&buffer[..end]).into_owned()
    } else {
        String::new()
    };
    if name.is_empty() { "localhost".to_string() } else { name }
}

impl Runtime for LocalRuntime {
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
        async move { self.exec_in_step(&handle, process, io).await }.boxed()
    }

    fn stop(&self, handle: &StepHandle, grace: Duration) -> BoxFuture<'_, Result<(), RuntimeError>> {
        let handle = handle.clone();
        async move { self.stop_step(&handle, grace).await }.boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<StepInfo>, RuntimeError>> {
        let work = self.work.clone();
        let worker = self.worker_name.clone();
        blocking(move || {
            let mut steps = Vec::new();
            for handle in work.steps()? {
                // A step removed meanwhile, or still being laid out, has no record to show.
                let Ok(record) = work.step(&handle).record() else { continue };
                steps.push(StepInfo { handle, worker: worker.clone(), metadata: record.metadata });
            }
            Ok(steps)
        })
        .boxed()
    }

    fn import_artifact(&self, tgz: TarGzStream, limits: UploadLimits) -> BoxFuture<'_, Result<Artifact, RuntimeError>> {
        let work = self.work.clone();
        async move {
            let artifact = artifacts::import(work, tgz, limits).await?;
            self.artifacts.fetch_add(1, Ordering::Relaxed);
            Ok(artifact)
        }
        .boxed()
    }

    fn export_artifact(&self, artifact: &Artifact) -> BoxFuture<'_, Result<TarGzStream, RuntimeError>> {
        let (work, artifact) = (self.work.clone(), artifact.clone());
        async move {
            let path = blocking(move || work.artifact_path(&artifact)).await?;
            Ok(artifacts::export(path))
        }
        .boxed()
    }

    fn read_file(&self, artifact: &Artifact, path: &str) -> BoxFuture<'_, Result<Vec<u8>, RuntimeError>> {
        let (work, artifact, path) = (self.work.clone(), artifact.clone(), path.to_string());
        blocking(move || artifacts::read_file(&work.artifact_path(&artifact)?, &path)).boxed()
    }

    fn release(&self, released: Vec<Artifact>) -> BoxFuture<'_, Result<(), RuntimeError>> {
        let work = self.work.clone();
        let counter = self.artifacts.clone();
        blocking(move || {
            for artifact in released {
                // Already gone is as good as released.
                if let Ok(path) = work.artifact_path(&artifact) {
                    fs::remove_tree(&path)?;
                    counter.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Ok(())
        })
        .boxed()
    }

    fn remove_caches(&self, keys: Vec<String>) -> BoxFuture<'_, Result<(), RuntimeError>> {
        let work = self.work.clone();
        blocking(move || {
            for key in keys {
                work.remove_cache(&key)?;
            }
            Ok(())
        })
        .boxed()
    }

    fn workers(&self) -> BoxFuture<'_, Vec<WorkerInfo>> {
        let work = self.work.clone();
        async move {
            let steps = blocking(move || Ok(work.steps()?.len() as u64)).await.unwrap_or(0);
            vec![WorkerInfo {
                name: self.worker_name.clone(),
                platform: "linux".to_string(),
                tags: Vec::new(),
                resource_types: self.types.names(),
                active_containers: steps,
                active_volumes: self.artifacts.load(Ordering::Relaxed),
            }]
        }
        .boxed()
    }
}
