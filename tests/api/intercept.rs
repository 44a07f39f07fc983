//! `fly intercept`: the hijack WebSocket driven as fly's hijacker drives
//! it, into a running task step and a running check.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the hijack socket of container `handle` of `team` as fly does.
async fn connect(server: &TestServer, team: &str, handle: &str, token: &str) -> Result<Socket, WsError> {
    let url = format!("{}/api/v1/teams/{team}/containers/{handle}/hijack", server.url.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request).await.map(|(socket, _)| socket)
}

/// The HTTP status and body a refused upgrade answered.
fn refusal(result: Result<Socket, WsError>) -> (u16, String) {
    match result {
        Err(WsError::Http(response)) => {
            let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
            (response.status().as_u16(), body)
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, got a WebSocket"),
    }
}

/// Everything the server said in one session.
#[derive(Debug, Default)]
struct Session {
    stdout: String,
    stderr: String,
    exit_status: Option<i64>,
    errors: Vec<String>,
    executable_not_found: bool,
    close: Option<(CloseCode, String)>,
}

fn decoded(output: &Value, key: &str) -> String {
    output[key].as_str().map(|b64| String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap()).unwrap_or_default()
}

/// Sends `first` (the process spec), then `inputs`, and reads until the
/// server closes.
async fn drive(mut socket: Socket, first: &str, inputs: &[Value]) -> Session {
    socket.send(Message::Text(first.into())).await.unwrap();
    for input in inputs {
        socket.send(Message::Text(input.to_string().into())).await.unwrap();
    }
    let read = async {
        let mut session = Session::default();
        while let Some(Ok(message)) = socket.next().await {
            match message {
                Message::Text(text) => {
                    let output: Value = serde_json::from_str(&text).unwrap();
                    session.stdout += &decoded(&output, "stdout");
                    session.stderr += &decoded(&output, "stderr");
                    session.exit_status = session.exit_status.or(output["exit_status"].as_i64());
                    session.errors.extend(output["error"].as_str().map(String::from));
                    session.executable_not_found |= output["executable_not_found"] == true;
                }
                Message::Close(frame) => {
                    session.close = frame.map(|f| (f.code, f.reason.to_string()));
                    break;
                }
                _ => {}
            }
        }
        session
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.expect("the session ends")
}

/// A process spec as fly sends it (fly always asks for privileged and a TTY).
fn spec(path: &str, args: &[&str]) -> String {
    json!({
        "path": path,
        "args": args,
        "env": ["TERM=xterm", "FROM_SPEC=spec-value"],
        "dir": "",
        "privileged": true,
        "user": "",
        "tty": { "window_size": { "columns": 80, "rows": 24 } },
    })
    .to_string()
}

const PIPELINE: &str = r#"
resources:
- {name: r, type: slow, check_every: never}
jobs:
- name: j
  plan:
  - task: t
    config:
      platform: linux
      params: {SOME_STEP_ENV: step-value}
      run: {path: sh, args: [-c, "echo ready; sleep 60"]}
- name: uses-r
  plan: [{get: r}]
"#;

/// A resource type whose check runs until stopped.
fn slow_type() -> tempfile::TempDir {
    let types = tempfile::tempdir().unwrap();
    std::fs::create_dir(types.path().join("slow")).unwrap();
    for (name, script) in [("check", "sleep 60"), ("in", "echo '{}'"), ("out", "echo '{}'")] {
        let path = types.path().join("slow").join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    types
}

/// The one container of `dev` of `kind`, once it runs.
async fn container(server: &TestServer, token: &str, kind: &str) -> String {
    let path = format!("/api/v1/teams/dev/containers?type={kind}");
    let containers = server.wait_for(token, &path, kind, |c| c.as_array().is_some_and(|c| !c.is_empty())).await;
    containers[0]["id"].as_str().unwrap().to_string()
}

async fn fly_intercept_runs_a_process_in_a_running_step(backend: Backend) {
    let types = slow_type();
    let users = [("ann", "ann-pw"), ("bob", "bob-pw")];
    let server = TestServer::start_with_resource_types_and_users(backend, types.path(), &users).await;
    let admin = server.admin_token().await;
    server.set_team(&admin, "dev", "member", "ann").await;
    server.set_team(&admin, "other", "owner", "bob").await;
    let ann = server.login("ann", "ann-pw").await;
    let bob = server.login("bob", "bob-pw").await;
    assert!(server.set_pipeline(&ann, "dev", "p", PIPELINE).await.status().is_success());
    let unpause = server.request(Method::PUT, "/api/v1/teams/dev/pipelines/p/unpause", Some(&ann)).send().await;
    assert_eq!(unpause.unwrap().status(), 200);
    let build = server.request(Method::POST, "/api/v1/teams/dev/pipelines/p/jobs/j/builds", Some(&ann)).send().await;
    let build_id = build.unwrap().json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let task = container(&server, &ann, "task").await;

    // The step's directory and environment, the spec's environment, stdin
    // until `closed`, both streams and the exit status; a resize is ignored.
    let script = "pwd; echo $SOME_STEP_ENV $FROM_SPEC; cat; echo err >&2; exit 7";
    let inputs = [
        json!({ "tty": { "window_size": { "columns": 100, "rows": 30 } } }),
        json!({ "stdin": STANDARD.encode("hello\n") }),
        json!({ "closed": true }),
    ];
    let socket = connect(&server, "dev", &task, &ann).await.unwrap();
    let session = drive(socket, &spec("sh", &["-c", script]), &inputs).await;
    let lines: Vec<&str> = session.stdout.lines().collect();
    assert!(lines[0].contains(&format!("/steps/{task}/")), "{session:?}");
    assert_eq!(lines[1..], ["step-value spec-value", "hello"], "{session:?}");
    assert_eq!(session.stderr, "err\n");
    assert_eq!(session.exit_status, Some(7));
    assert_eq!(session.close, Some((CloseCode::Normal, String::new())));

    // fly retries with `sh` when `bash` is not found.
    let socket = connect(&server, "dev", &task, &ann).await.unwrap();
    let session = drive(socket, &spec("/no/such/program", &[]), &[]).await;
    assert!(session.executable_not_found, "{session:?}");
    assert!(session.errors[0].contains("executable file not found"), "{session:?}");
    assert_eq!(session.exit_status, None);

    let socket = connect(&server, "dev", &task, &ann).await.unwrap();
    let session = drive(socket, "{not json", &[]).await;
    assert_eq!(session.close, Some((CloseCode::Unsupported, "malformed process spec".into())));

    // Found only in its own team, and only by a member of it.
    let (status, body) = refusal(connect(&server, "other", &task, &bob).await);
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(body["errors"][0]["detail"].as_str().unwrap().contains(&task), "{body}");
    assert_eq!(refusal(connect(&server, "dev", &task, &bob).await).0, 403);
    assert_eq!(refusal(connect(&server, "dev", "no-such-container", &ann).await).0, 404);
    // Without an upgrade: a JSON error.
    let plain = server.get(&format!("/api/v1/teams/dev/containers/{task}/hijack"), Some(&ann)).await;
    assert_eq!(plain.status(), 400);
    assert!(plain.json::<Value>().await.unwrap()["errors"][0].is_string());

    // A check's step serves every team sharing the resource: admins only.
    let check = server
        .request(Method::POST, "/api/v1/teams/dev/pipelines/p/resources/r/check", Some(&ann))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), 201);
    let check_id = check.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let checking = container(&server, &ann, "check").await;
    assert_eq!(refusal(connect(&server, "dev", &checking, &ann).await).0, 403);
    let socket = connect(&server, "dev", &checking, &admin).await.unwrap();
    assert_eq!(drive(socket, &spec("sh", &["-c", "exit 3"]), &[]).await.exit_status, Some(3));

    for id in [build_id, check_id] {
        server.request(Method::PUT, &format!("/api/v1/builds/{id}/abort"), Some(&admin)).send().await.unwrap();
    }
    server.wait_for(&admin, "/api/v1/teams/dev/containers", "the steps to stop", |c| c == &json!([])).await;
    server.stop().await;
}

on_both_backends!(fly_intercept_runs_a_process_in_a_running_step);
