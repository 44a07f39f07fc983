//! A process run inside an existing step (`fly intercept`): in its working
//! directory, with its environment and account, output streamed to the
//! caller rather than kept with the step.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::user::HostUser;
use crate::runtime::{ExecIo, OutputOffset, OutputSink, OutputStream, RuntimeError};

pub struct Exec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub user: Option<HostUser>,
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
        .kill_on_drop(true);
    let switch_to = exec.user.as_ref().map(|user| (user.uid, user.gid, user.groups.clone()));
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls on data prepared before the fork.
    unsafe {
        command.pre_exec(move || {
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
    let mut child =
        command.spawn().map_err(|err| RuntimeError::Setup(format!("cannot run {}: {err}", exec.program.display())))?;
    if let (Some(mut chunks), Some(mut stdin)) = (io.stdin, child.stdin.take()) {
        tokio::spawn(async move {
            while let Some(chunk) = chunks.recv().await {
                if stdin.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
    }
    let offsets = std::sync::Arc::new(std::sync::Mutex::new(OutputOffset::default()));
    let stdout = child.stdout.take().map(|out| forward(out, io.output.clone(), OutputStream::Stdout, offsets.clone()));
    let stderr = child.stderr.take().map(|err| forward(err, io.output.clone(), OutputStream::Stderr, offsets.clone()));
    let status = child.wait().await?;
    if let Some(stdout) = stdout {
        stdout.await;
    }
    if let Some(stderr) = stderr {
        stderr.await;
    }
    use std::os::unix::process::ExitStatusExt;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

async fn forward(
    mut pipe: impl AsyncRead + Unpin,
    sink: std::sync::Arc<dyn OutputSink>,
    stream: OutputStream,
    offsets: std::sync::Arc<std::sync::Mutex<OutputOffset>>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(read) = pipe.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        let end = {
            let mut offset = offsets.lock().unwrap_or_else(|p| p.into_inner());
            *offset = offset.advanced(stream, read);
            *offset
        };
        sink.write(stream, &buffer[..read], end);
    }
}
