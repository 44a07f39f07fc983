//! One step's process: started as the leader of a new session (so of a new
//! process group, with no controlling terminal to hang on), its output
//! streamed as it arrives, and the whole group killed when it exits, when
//! the step is cancelled, or when captured stdout grows past the limit.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::user::HostUser;
use crate::runtime::{OutputSink, OutputStream, RuntimeError, Stdout};
use crate::telemetry::{TRACER_NAME, propagation};
use opentelemetry::KeyValue;

/// How long the output pipes are drained after the group is killed: a
/// process that left the group (`setsid`) may keep them open forever.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
const READ_CHUNK: usize = 64 * 1024;

pub struct Launch {
    pub program: PathBuf,
    /// The program as the step named it (`/opt/resource/in`, `ci/test.sh`):
    /// what messages show, rather than where it is on this host.
    pub name: String,
    pub args: Vec<String>,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    pub stdout: Stdout,
    pub user: Option<HostUser>,
}

pub struct Supervision {
    /// Time between SIGTERM and SIGKILL when a step is cancelled.
    pub stop_grace_period: Duration,
    pub capture_limit: usize,
}

pub struct Finished {
    pub exit_code: i32,
    pub stdout: Option<Vec<u8>>,
}

/// Captured stdout, and whether it outgrew the limit.
#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    overflowed: bool,
}

pub async fn run(
    launch: Launch,
    sink: Arc<dyn OutputSink>,
    cancel: CancellationToken,
    supervision: &Supervision,
) -> Result<Finished, RuntimeError> {
    let mut command = Command::new(&launch.program);
    command
        .args(&launch.args)
        .current_dir(&launch.dir)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(if launch.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    let switch_to = launch.user.as_ref().map(|user| (user.uid, user.gid, user.groups.clone()));
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls on data prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some((uid, gid, groups)) = &switch_to
                && (libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(*gid) != 0
                    || libc::setuid(*uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|err| {
        tracing::warn!(program = %launch.program.display(), error = %err, "cannot start a step's process");
        RuntimeError::Setup(format!("cannot run {}: {err}", launch.name))
    })?;
    let pid = child.id().ok_or_else(|| RuntimeError::Setup("the process exited before it was watched".into()))?
        as libc::pid_t;
    let span = ProcessSpan::start(&launch, pid);

    if let (Some(input), Some(mut stdin)) = (launch.stdin, child.stdin.take()) {
        // A process that never reads its stdin makes this fail; that is its business.
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let overflow = Arc::new(Notify::new());
    let captured = Arc::new(Mutex::new(Captured::default()));
    let stdout_reader = match (child.stdout.take(), launch.stdout) {
        (Some(out), Stdout::Stream) => Some(tokio::spawn(stream(out, sink.clone(), OutputStream::Stdout))),
        (Some(out), Stdout::Capture) => {
            Some(tokio::spawn(capture(out, captured.clone(), supervision.capture_limit, overflow.clone())))
        }
        (None, _) => None,
    };
    let stderr_reader = child.stderr.take().map(|err| tokio::spawn(stream(err, sink.clone(), OutputStream::Stderr)));

    // The leader is waited for without being reaped, so its pid (the group's
    // id) cannot be reused until the group has been killed below.
    let mut exited = tokio::task::spawn_blocking(move || wait_without_reaping(pid));
    let ending = tokio::select! {
        _ = &mut exited => Ending::Exited,
        _ = cancel.cancelled() => Ending::Cancelled,
        _ = overflow.notified() => Ending::StdoutTooLarge,
    };
    if !matches!(ending, Ending::Exited) {
        signal_group(pid, libc::SIGTERM);
        if tokio::time::timeout(supervision.stop_grace_period, &mut exited).await.is_err() {
            signal_group(pid, libc::SIGKILL);
            let _ = exited.await;
        }
    }
    // Whatever the leader left behind in its group goes with it.
    signal_group(pid, libc::SIGKILL);
    let status = child.wait().await?;

    drain(stdout_reader).await;
    drain(stderr_reader).await;
    span.end(matches!(ending, Ending::Exited).then(|| exit_code_of(status)));
    match ending {
        Ending::Cancelled => Err(RuntimeError::Interrupted),
        Ending::StdoutTooLarge => Err(RuntimeError::StdoutTooLarge { limit_bytes: supervision.capture_limit }),
        Ending::Exited => {
            let exit_code = exit_code_of(status);
            let stdout = match launch.stdout {
                Stdout::Capture => Some(std::mem::take(&mut lock(&captured).bytes)),
                Stdout::Stream => None,
            };
            if stdout.is_some() && lock(&captured).overflowed {
                return Err(RuntimeError::StdoutTooLarge { limit_bytes: supervision.capture_limit });
            }
            Ok(Finished { exit_code, stdout })
        }
    }
}

/// A shell's numbering: the exit code, or 128 + the signal that ended it.
fn exit_code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The `runtime.process` span, under the step span the engine handed the
/// process in `TRACEPARENT`; none without one.
struct ProcessSpan(Option<opentelemetry::global::BoxedSpan>);

impl ProcessSpan {
    fn start(launch: &Launch, pid: libc::pid_t) -> ProcessSpan {
        use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
        let parent = propagation::context_from_environment(&launch.env);
        if !parent.span().span_context().is_valid() {
            return ProcessSpan(None);
        }
        let command = launch.program.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tracer = opentelemetry::global::tracer(TRACER_NAME);
        let span = tracer
            .span_builder("runtime.process")
            .with_kind(SpanKind::Internal)
            .with_attributes([KeyValue::new("process.pid", i64::from(pid)), KeyValue::new("process.command", command)])
            .start_with_context(&tracer, &parent);
        ProcessSpan(Some(span))
    }

    /// `exit_code` is `None` when the process was stopped.
    fn end(self, exit_code: Option<i32>) {
        use opentelemetry::trace::Span;
        let Some(mut span) = self.0 else { return };
        match exit_code {
            Some(code) => span.set_attribute(KeyValue::new("process.exit.code", i64::from(code))),
            None => span.set_attribute(KeyValue::new("error.type", "stopped")),
        }
        span.end();
    }
}

enum Ending {
    Exited,
    Cancelled,
    StdoutTooLarge,
}

fn lock(captured: &Mutex<Captured>) -> std::sync::MutexGuard<'_, Captured> {
    captured.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn wait_without_reaping(pid: libc::pid_t) {
    loop {
        // SAFETY: an all-zero siginfo_t is valid for waitid to fill in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out-pointer; WNOWAIT leaves the child to tokio to reap.
        let result = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if result == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

fn signal_group(pgid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: killpg has no memory effects; a group that is already gone gives ESRCH.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

async fn stream(mut pipe: impl AsyncRead + Unpin, sink: Arc<dyn OutputSink>, which: OutputStream) {
    let mut buffer = vec![0u8; READ_CHUNK];
    while let Ok(read) = pipe.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        sink.write(which, &buffer[..read]);
    }
}

async fn capture(
    mut pipe: impl AsyncRead + Unpin,
    captured: Arc<Mutex<Captured>>,
    limit: usize,
    overflow: Arc<Notify>,
) {
    let mut buffer = vec![0u8; READ_CHUNK];
    while let Ok(read) = pipe.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        let mut captured = lock(&captured);
        if captured.bytes.len() + read > limit {
            captured.overflowed = true;
            overflow.notify_one();
            return;
        }
        captured.bytes.extend_from_slice(&buffer[..read]);
    }
}

async fn drain(reader: Option<JoinHandle<()>>) {
    if let Some(reader) = reader {
        let abort = reader.abort_handle();
        if tokio::time::timeout(DRAIN_TIMEOUT, reader).await.is_err() {
            abort.abort();
        }
    }
}
