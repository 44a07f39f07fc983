//! A process run inside an existing step (`fly intercept`): in its working
//! directory, with its environment and account, output streamed to the
//! caller rather than kept with the step.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::Sender;
use tokio_util::sync::CancellationToken;

use super::process;
use super::step_files::ProcessGroup;
use super::user::HostUser;
use crate::runtime::{ExecIo, ExecOutput, OutputStream, RuntimeError};

pub struct Exec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub user: Option<HostUser>,
    /// Cancelled when the step is stopped.
    pub stop: CancellationToken,
    /// Between SIGTERM and SIGKILL then.
    pub grace: Duration,
}

/// Runs `exec` to its end; answers its exit code (128 + signal when killed).
pub async fn run(exec: Exec, io: ExecIo) -> Result<i32, RuntimeError> {
    let mut command = tokio::process::Command::new(&exec.program);
    command
        .args(&exec.args)
        .current_dir(&exec.dir)
        .env_clear()
        .envs(exec.env.iter().map(|(k, v)| (k, v)))
        .stdin(if io.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, so that what it starts stops with it.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(user) = &exec.user {
        user.run_as(&mut command);
    }
    let mut child = command.spawn().map_err(|err| match err.kind() {
        // The working directory was checked before: a missing file is the program.
        std::io::ErrorKind::NotFound => RuntimeError::ExecutableNotFound(exec.program.display().to_string()),
        _ => RuntimeError::Setup(format!("cannot run {}: {err}", exec.program.display())),
    })?;
    let group = child.id().and_then(|pid| i32::try_from(pid).ok()).unwrap_or(0);
    // Declared after the child, so dropped before it: the group is killed
    // while its leader is not yet reaped and its id cannot name another.
    let mut running = KillOnDrop(group);
    if let (Some(mut chunks), Some(mut stdin)) = (io.stdin, child.stdin.take()) {
        tokio::spawn(async move {
            while let Some(chunk) = chunks.recv().await {
                if stdin.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
    }
    let stdout = forward(child.stdout.take(), io.output.clone(), OutputStream::Stdout);
    let stderr = forward(child.stderr.take(), io.output, OutputStream::Stderr);
    // Read while waiting: a process whose pipes fill up would never exit.
    let wait = async {
        tokio::select! {
            status = child.wait() => status,
            () = exec.stop.cancelled() => {
                process::stop(ProcessGroup { pgid: group, started: 0 }, exec.grace).await;
                child.wait().await
            }
        }
    };
    let (status, (), ()) = tokio::join!(wait, stdout, stderr);
    // Reaped: the id is free for others now.
    running.0 = 0;
    let status = status?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

async fn forward(pipe: Option<impl AsyncRead + Unpin>, output: Sender<ExecOutput>, stream: OutputStream) {
    let Some(mut pipe) = pipe else { return };
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(read) = pipe.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        // A reader that went away still gets the pipe drained, so the process is not stuck.
        let _ = output.send(ExecOutput { stream, chunk: Bytes::copy_from_slice(&buffer[..read]) }).await;
    }
}

/// Kills the process group of an exec whose caller went away (a closed
/// `fly intercept`), unless its leader was reaped (0).
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0 > 0 {
            process::signal_group(self.0, libc::SIGKILL);
        }
    }
}
