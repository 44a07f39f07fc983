//! Running a command in a pod's container through `pods/exec` (WebSocket),
//! stdin, stdout and stderr apart, and its exit code.

use std::path::PathBuf;

use bytes::Bytes;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Api;
use kube::api::AttachParams;
use opentelemetry::Context;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::api;
use crate::runtime::{ExecOutput, OutputStream, RuntimeError};

/// What an exec'd command reads.
pub enum Stdin {
    None,
    Bytes(Bytes),
    /// A local file, streamed whole.
    File(PathBuf),
    /// Chunks as they come; the stream stays open until the command ends.
    Channel(mpsc::Receiver<Bytes>),
}

/// How an exec ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    /// The exec did not run or was cut off (the container is not running,
    /// the node refused): the message says why.
    Failed(String),
}

/// Runs `command` in container `container` of pod `pod`; its output goes to
/// `output` chunk by chunk (dropped when the receiver is gone). The stdin
/// stream is held open until the command ends: closing it early would, on
/// clusters that cannot pass the end of stdin on, drop the whole stream.
pub async fn run(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    command: Vec<String>,
    stdin: Stdin,
    output: mpsc::Sender<ExecOutput>,
    parent: &Context,
) -> Result<Ended, RuntimeError> {
    let params =
        AttachParams::default().container(container).stdin(!matches!(stdin, Stdin::None)).stdout(true).stderr(true);
    let started = api::retrying("exec", "pods/exec", parent, || pods.exec(pod, command.clone(), &params)).await;
    let mut process = match started {
        Ok(process) => process,
        Err(err) if api::is_transient(&err) => return Err(api::failed(&format!("exec in pod {pod}"), err)),
        // Not allowed: asking again cannot help, so the step errors at once
        // rather than being followed again as if the stream had dropped.
        Err(err) if matches!(api::status_code(&err), Some(401 | 403)) => {
            return Err(RuntimeError::Setup(format!(
                "exec in pod {pod} was refused ({err}): atc's Role must grant create and get on pods/exec"
            )));
        }
        Err(err) => return Ok(Ended::Failed(err.to_string())),
    };
    let status = process.take_status();
    let (stdout, stderr) = (process.stdout(), process.stderr());
    let writer = process.stdin();
    // Returns the stdin stream to hold open until the command ends, unless
    // its end was passed on.
    let feed = async move {
        let Some(mut writer) = writer else { return Ok::<_, std::io::Error>(None) };
        match stdin {
            Stdin::None => {}
            Stdin::Bytes(bytes) => writer.write_all(&bytes).await?,
            Stdin::File(path) => {
                let mut file = tokio::fs::File::open(path).await?;
                tokio::io::copy(&mut file, &mut writer).await?;
            }
            Stdin::Channel(mut chunks) => {
                while let Some(chunk) = chunks.recv().await {
                    writer.write_all(&chunk).await?;
                }
                // The sender is done: its end is the end of stdin.
                writer.shutdown().await?;
                return Ok(None);
            }
        }
        writer.flush().await?;
        Ok(Some(writer))
    };
    let (fed, (), ()) =
        tokio::join!(feed, pump(stdout, OutputStream::Stdout, &output), pump(stderr, OutputStream::Stderr, &output));
    let status = match status {
        Some(status) => status.await,
        None => None,
    };
    // The command ended: its stdin may go.
    let fed = fed.map(drop);
    let _ = process.join().await;
    if let Err(err) = fed {
        return Ok(Ended::Failed(format!("cannot send stdin: {err}")));
    }
    Ok(match status {
        Some(status) => ended(&status),
        None => Ended::Failed("the exec stream ended without an exit status".into()),
    })
}

async fn pump(reader: Option<impl AsyncRead + Unpin>, stream: OutputStream, output: &mpsc::Sender<ExecOutput>) {
    let Some(mut reader) = reader else { return };
    let mut buffer = vec![0u8; 32 * 1024];
    while let Ok(n) = reader.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        // A receiver that went away only loses the output.
        let _ = output.send(ExecOutput { stream, chunk: Bytes::copy_from_slice(&buffer[..n]) }).await;
    }
}

/// The exit code a final exec status reports (0 for `Success`).
fn ended(status: &Status) -> Ended {
    if status.status.as_deref() == Some("Success") {
        return Ended::Exited(0);
    }
    let code = status
        .details
        .as_ref()
        .and_then(|details| details.causes.as_ref())
        .and_then(|causes| causes.iter().find(|cause| cause.reason.as_deref() == Some("ExitCode")))
        .and_then(|cause| cause.message.as_deref())
        .and_then(|message| message.parse().ok());
    match code {
        Some(code) => Ended::Exited(code),
        None => Ended::Failed(status.message.clone().unwrap_or_else(|| "the exec failed".into())),
    }
}

/// Runs `command` and collects its stdout and stderr whole (short
/// commands of the runtime's own).
pub async fn collect(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    command: Vec<String>,
    stdin: Stdin,
    parent: &Context,
) -> Result<(Ended, Vec<u8>, Vec<u8>), RuntimeError> {
    let (sender, mut receiver) = mpsc::channel(16);
    let gather = async move {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(ExecOutput { stream, chunk }) = receiver.recv().await {
            match stream {
                OutputStream::Stdout => out.extend_from_slice(&chunk),
                OutputStream::Stderr => err.extend_from_slice(&chunk),
            }
        }
        (out, err)
    };
    let (ended, (out, err)) = tokio::join!(run(pods, pod, container, command, stdin, sender, parent), gather);
    Ok((ended?, out, err))
}
