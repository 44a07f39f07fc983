//! `fly intercept` (`GET T/containers/{id}/hijack`): a WebSocket over which
//! fly runs a process in one of the team's running steps. The protocol is
//! Concourse's: the client's first message is the process spec, then come
//! its inputs (stdin, closing stdin, window sizes); the server answers the
//! process's output and, last, its exit status or an error. Byte payloads
//! are base64, as Go encodes `[]byte` in JSON.

use std::pin::pin;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::AppState;
use super::access::{Caller, TeamScope};
use super::error::{ApiError, ApiResult};
use crate::engine::Engine;
use crate::runtime::{ExecIo, ExecOutput, OutputStream, ProcessSpec, RuntimeError, Stdout, StepHandle};

/// How many chunks of input or output wait between the socket and the
/// process before the faster side waits for the slower.
const QUEUED_CHUNKS: usize = 16;

/// The client's first message. `privileged` and `tty` are not read: steps
/// run with the rights they have, and without a terminal.
#[derive(Debug, Deserialize)]
struct HijackProcessSpec {
    #[serde(default)]
    path: String,
    #[serde(default)]
    args: Option<Vec<String>>,
    /// `NAME=VALUE` entries, added to the step's environment.
    #[serde(default)]
    env: Option<Vec<String>>,
    /// Empty: the step's working directory.
    #[serde(default)]
    dir: String,
    /// Empty: the step's user.
    #[serde(default)]
    user: String,
}

/// A later message: stdin bytes, stdin closed, or a terminal resize
/// (ignored: there is no terminal), tried in Concourse's order.
#[derive(Debug, Deserialize)]
struct HijackInput {
    #[serde(default)]
    closed: bool,
    #[serde(default)]
    stdin: Option<String>,
}

/// One message to the client; only the fields set are sent.
#[derive(Debug, Default, Serialize)]
struct HijackOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_status: Option<i32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    executable_not_found: bool,
}

/// Finds the step before upgrading, so that a missing or forbidden one is
/// an HTTP error fly can print.
pub async fn hijack_container(
    State(state): State<AppState>,
    Extension(TeamScope(team)): Extension<TeamScope>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let not_found = || ApiError::not_found(format!("container '{id}'"));
    let handle = StepHandle::parse(&id).map_err(|_| not_found())?;
    let step = state
        .engine
        .steps()
        .await
        .map_err(|err| ApiError::Internal(format!("cannot list the runtime's steps: {err}")))?
        .into_iter()
        .find(|step| step.handle == handle && step.metadata.team == team.name)
        .ok_or_else(not_found)?;
    if !caller.access.may_intercept(&step.metadata.step_type) {
        return Err(ApiError::Forbidden);
    }
    let upgrade = upgrade.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let engine = state.engine.clone();
    Ok(upgrade.on_upgrade(move |socket| async move {
        tracing::info!(handle = %handle, user = caller.access.display_name(), "intercepting a step");
        session(socket, &engine, &handle).await;
    }))
}

/// One session: the spec, then the process until it exits or the client
/// goes away (which kills it).
async fn session(mut socket: WebSocket, engine: &Engine, handle: &StepHandle) {
    let Some(spec) = first_message(&mut socket).await else { return };
    let spec = match serde_json::from_slice::<HijackProcessSpec>(&spec) {
        Ok(spec) => spec,
        Err(_) => return close(socket, close_code::UNSUPPORTED, "malformed process spec").await,
    };
    let process = match process_spec(spec) {
        Ok(process) => process,
        Err(unusable) => {
            let error = Some(unusable.to_string());
            let _ = send(&mut socket, HijackOutput { error, ..HijackOutput::default() }).await;
            return close(socket, close_code::NORMAL, "").await;
        }
    };

    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(QUEUED_CHUNKS);
    let (output_tx, mut outputs) = mpsc::channel::<ExecOutput>(QUEUED_CHUNKS);
    let mut run = pin!(engine.exec(handle, process, ExecIo { stdin: Some(stdin_rx), output: output_tx }));
    let mut stdin = Some(stdin_tx);
    // Stdin the process has not taken yet; the socket is not read meanwhile.
    let mut pending: Option<Bytes> = None;
    let result = loop {
        tokio::select! {
            result = &mut run => break result,
            Some(output) = outputs.recv() => {
                if send(&mut socket, output_message(output)).await.is_err() {
                    return;
                }
            }
            permit = reserve(stdin.clone()), if pending.is_some() => match permit {
                Some(permit) => {
                    permit.send(pending.take().unwrap_or_default());
                }
                // The process no longer reads its stdin.
                None => (stdin, pending) = (None, None),
            },
            message = socket.recv(), if pending.is_none() => match received(message) {
                Received::Data(payload) => match input(&payload) {
                    Some(Input::Stdin(bytes)) => pending = stdin.is_some().then_some(bytes),
                    Some(Input::Close) => stdin = None,
                    Some(Input::Ignored) => {}
                    None => return close(socket, close_code::UNSUPPORTED, "malformed input").await,
                },
                Received::Control => {}
                // The client went away: dropping the run stops the process.
                Received::Gone => return,
            },
        }
    };
    // The runtime has let go of the output channel: what is left is the end.
    while let Some(output) = outputs.recv().await {
        if send(&mut socket, output_message(output)).await.is_err() {
            return;
        }
    }
    let last = match result {
        Ok(code) => vec![HijackOutput { exit_status: Some(code), ..HijackOutput::default() }],
        Err(err @ RuntimeError::ExecutableNotFound(_)) => vec![
            // fly tries `sh` after `bash` on seeing this.
            HijackOutput { executable_not_found: true, ..HijackOutput::default() },
            HijackOutput { error: Some(err.to_string()), ..HijackOutput::default() },
        ],
        Err(err) => vec![HijackOutput { error: Some(err.to_string()), ..HijackOutput::default() }],
    };
    for message in last {
        if send(&mut socket, message).await.is_err() {
            return;
        }
    }
    close(socket, close_code::NORMAL, "").await;
}

/// The first data message's payload; `None` when the client left first.
async fn first_message(socket: &mut WebSocket) -> Option<Bytes> {
    loop {
        match received(socket.recv().await) {
            Received::Data(payload) => return Some(payload),
            Received::Control => {}
            Received::Gone => return None,
        }
    }
}

/// What a message from the client amounts to.
enum Received {
    /// A text or binary message (go-concourse sends text, but reads either).
    Data(Bytes),
    /// Pings and pongs (axum answers pings itself).
    Control,
    /// A close, an error or the end of the connection.
    Gone,
}

fn received(message: Option<Result<Message, axum::Error>>) -> Received {
    match message {
        Some(Ok(Message::Text(text))) => Received::Data(Bytes::copy_from_slice(text.as_bytes())),
        Some(Ok(Message::Binary(bytes))) => Received::Data(bytes),
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Received::Control,
        Some(Ok(Message::Close(_)) | Err(_)) | None => Received::Gone,
    }
}

/// Why a client's process spec cannot be run.
#[derive(Debug, thiserror::Error)]
enum UnusableSpec {
    #[error("the process spec has no path")]
    NoPath,
    #[error("environment entry '{0}' is not NAME=VALUE")]
    NotAnEnvEntry(String),
}

/// The runtime's process for a client's spec.
fn process_spec(spec: HijackProcessSpec) -> Result<ProcessSpec, UnusableSpec> {
    if spec.path.is_empty() {
        return Err(UnusableSpec::NoPath);
    }
    let env = spec
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|entry| match entry.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
            _ => Err(UnusableSpec::NotAnEnvEntry(entry)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ProcessSpec {
        path: spec.path,
        args: spec.args.unwrap_or_default(),
        dir: spec.dir,
        user: (!spec.user.is_empty()).then_some(spec.user),
        env,
        stdin: None,
        stdout: Stdout::Stream,
    })
}

enum Input {
    Stdin(Bytes),
    Close,
    Ignored,
}

/// A later message; `None` when it is not one.
fn input(payload: &[u8]) -> Option<Input> {
    let input: HijackInput = serde_json::from_slice(payload).ok()?;
    if input.closed {
        return Some(Input::Close);
    }
    match input.stdin {
        Some(encoded) => Some(Input::Stdin(Bytes::from(STANDARD.decode(encoded).ok()?))),
        None => Some(Input::Ignored),
    }
}

/// Room for one chunk of stdin; `None` when the process stopped reading it.
/// Owned, so that the loop may close stdin meanwhile.
async fn reserve(stdin: Option<mpsc::Sender<Bytes>>) -> Option<mpsc::OwnedPermit<Bytes>> {
    stdin?.reserve_owned().await.ok()
}

fn output_message(output: ExecOutput) -> HijackOutput {
    let encoded = Some(STANDARD.encode(&output.chunk));
    match output.stream {
        OutputStream::Stdout => HijackOutput { stdout: encoded, ..HijackOutput::default() },
        OutputStream::Stderr => HijackOutput { stderr: encoded, ..HijackOutput::default() },
    }
}

async fn send(socket: &mut WebSocket, output: HijackOutput) -> Result<(), axum::Error> {
    let json = serde_json::to_string(&output).unwrap_or_default();
    socket.send(Message::Text(json.into())).await
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}
