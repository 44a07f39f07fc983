//! The local runtime: each step is a process group on this host, in a work
//! dir of its own under `--work-dir`; artifacts are directories there.
//!
//! It has no containers, and says so in the step's log where that matters:
//! a task's image is not used (its `metadata.json` environment is), `user`
//! needs atc to run as root, `container_limits` are not enforced. Resource
//! types are `--resource-types-dir` scripts or built into atc.

mod artifacts;
mod fs;
mod images;
mod layout;
mod process;
mod unpack;
mod user;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub use self::fs::join_relative;

use self::artifacts::blocking;
use self::images::ResourceTypes;
use self::layout::WorkDir;
use self::user::UserChoice;
use super::{
    Artifact, OutputSink, OutputStream, RunningStep, Runtime, RuntimeError, StepOutcome, StepSpec, TarGzStream,
    UploadLimits, WorkerInfo,
};

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
    supervision: process::Supervision,
    worker_name: String,
    running: Arc<RunningSteps>,
    artifacts: Arc<AtomicU64>,
}

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
            let types = ResourceTypes::scan(types_dir.as_deref(), atc_executable).map_err(RuntimeError::Setup)?;
            let count = work.count_artifacts();
            Ok((work, types, count))
        })
        .await?;
        Ok(LocalRuntime {
            work,
            types,
            supervision: process::Supervision {
                stop_grace_period: options.stop_grace_period,
                capture_limit: options.capture_limit,
            },
            worker_name: hostname(),
            running: Arc::default(),
            artifacts: Arc::new(AtomicU64::new(artifact_count)),
        })
    }

    pub fn work_dir(&self) -> &std::path::Path {
        self.work.path()
    }

    pub fn resource_types(&self) -> Vec<String> {
        self.types.names()
    }

    async fn run_step(
        &self,
        spec: StepSpec,
        sink: Arc<dyn OutputSink>,
        cancel: CancellationToken,
    ) -> Result<StepOutcome, RuntimeError> {
        let _running = self.running.start(RunningStep {
            handle: spec.handle.clone(),
            worker: self.worker_name.clone(),
            metadata: spec.metadata.clone(),
        });
        let work = self.work.clone();
        let types = self.types.clone();
        let setup_spec = spec.clone();
        let (program, dirs, user, account, notices) = blocking(move || {
            let spec = setup_spec;
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
            let dirs = layout::prepare(
                &work,
                &spec.handle,
                &inputs,
                &spec.caches,
                &spec.outputs,
                &spec.process.dir,
                user.as_ref(),
            )?;
            // Whose HOME and USER the process gets (reads the password database).
            let account = user.clone().or_else(user::current_user);
            Ok((program, dirs, user, account, notices))
        })
        .await?;
        for notice in &notices {
            sink.write(OutputStream::Stderr, format!("{notice}\n").as_bytes());
        }

        let dirs = Arc::new(dirs);
        let result = async {
            if cancel.is_cancelled() {
                return Err(RuntimeError::Interrupted);
            }
            let working_dir = fs::join_relative(&dirs.root, &spec.process.dir).map_err(RuntimeError::Setup)?;
            let launch = process::Launch {
                program: program_path(&program.program, &working_dir),
                name: spec.process.path.clone(),
                args: program.leading_args.iter().cloned().chain(spec.process.args.iter().cloned()).collect(),
                dir: working_dir,
                env: process_env(account, &dirs.tmp, &program.image_env, &spec.process.env),
                stdin: spec.process.stdin.clone(),
                stdout: spec.process.stdout,
                user,
            };
            process::run(launch, sink, cancel, &self.supervision).await
        }
        .await;

        // Outputs are kept whatever the exit code: Concourse keeps the
        // outputs of failed tasks too. A step that did not finish (cancelled,
        // could not start) has no outcome to hand them to.
        let work = self.work.clone();
        let outputs = if result.is_ok() { spec.outputs.clone() } else { Vec::new() };
        let caches = spec.caches.clone();
        let finish_dirs = dirs.clone();
        let captured = blocking(move || layout::finish(&work, &finish_dirs, &caches, &outputs)).await;
        let finished = result?;
        let captured = captured?;
        self.artifacts.fetch_add(captured.len() as u64, Ordering::Relaxed);
        Ok(StepOutcome {
            exit_code: finished.exit_code,
            outputs: captured.into_iter().collect(),
            stdout: finished.stdout,
        })
    }
}

/// The steps running now: [`WorkerInfo::active_containers`] and
/// [`Runtime::running_steps`].
#[derive(Default)]
struct RunningSteps {
    next_id: AtomicU64,
    steps: Mutex<BTreeMap<u64, RunningStep>>,
}

impl RunningSteps {
    fn start(self: &Arc<Self>, step: RunningStep) -> StepRunning {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.steps.lock().unwrap_or_else(|e| e.into_inner()).insert(id, step);
        StepRunning { steps: self.clone(), id }
    }

    fn list(&self) -> Vec<RunningStep> {
        self.steps.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }
}

/// Keeps a step in [`RunningSteps`] until dropped.
struct StepRunning {
    steps: Arc<RunningSteps>,
    id: u64,
}

impl Drop for StepRunning {
    fn drop(&mut self) {
        self.steps.steps.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
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
    fn run(
        &self,
        spec: StepSpec,
        sink: Arc<dyn OutputSink>,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, Result<StepOutcome, RuntimeError>> {
        self.run_step(spec, sink, cancel).boxed()
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

    fn workers(&self) -> Vec<WorkerInfo> {
        vec![WorkerInfo {
            name: self.worker_name.clone(),
            platform: "linux".to_string(),
            resource_types: self.types.names(),
            active_containers: self.running.list().len() as u64,
            active_volumes: self.artifacts.load(Ordering::Relaxed),
        }]
    }

    fn running_steps(&self) -> Vec<RunningStep> {
        self.running.list()
    }
}
