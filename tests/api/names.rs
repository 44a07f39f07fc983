//! Team and pipeline names: names no URL can address, that pose as other
//! names or that are absurdly long are refused wherever a name is given;
//! odd but usable ones still only warn.

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

const PIPELINE: &str = "jobs:\n- name: j\n  plan:\n  - task: t\n    config: {platform: linux, run: {path: 'true'}}\n";

/// Each unusable name with what the refusal must say about it.
fn unusable() -> Vec<(String, &'static str)> {
    vec![
        (".".into(), "must not be '.': URLs drop such path segments"),
        ("..".into(), "must not be '..': URLs drop such path segments"),
        (" ".into(), "must not start or end with whitespace"),
        ("  padded ".into(), "must not start or end with whitespace"),
        ("evil\u{202E}lmx.exe".into(), "must not contain invisible or text-direction characters (found U+202E)"),
        ("ad\u{200B}min".into(), "must not contain invisible or text-direction characters (found U+200B)"),
        ("\u{2066}x\u{2069}".into(), "must not contain invisible or text-direction characters (found U+2066)"),
        ("x".repeat(5000), "is 5000 characters long; at most 128 are allowed"),
        ("x".repeat(129), "is 129 characters long; at most 128 are allowed"),
    ]
}

/// Every byte percent-encoded, so nothing is normalized on the way.
fn encoded(name: &str) -> String {
    name.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// A request sent byte for byte as written: clients normalize `%2E` path
/// segments away before sending, a hostile caller need not.
async fn raw_request(server: &TestServer, method: &str, path: &str, token: &str, body: &str) -> (u16, Value) {
    let address = server.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/x-yaml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn refusal(kind: &str, problem: &str) -> Value {
    json!({ "errors": [format!("{kind} name {problem}")] })
}

async fn unusable_team_and_pipeline_names_are_refused_everywhere(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    server.set_team(&admin, "dev", "owner", "admin").await;
    assert!(server.set_pipeline(&admin, "main", "p", PIPELINE).await.status().is_success());
    let auth = json!({ "auth": { "owner": { "users": ["local:admin"] } } });

    for (name, problem) in unusable() {
        let shown = format!("{name:?}");
        let shown = &shown[..shown.len().min(40)];
        // fly set-pipeline and fly set-team name it in the path.
        let (status, body) = raw_request(
            &server,
            "PUT",
            &format!("/api/v1/teams/main/pipelines/{}/config", encoded(&name)),
            &admin,
            PIPELINE,
        )
        .await;
        assert_eq!((status, body), (400, refusal("pipeline", problem)), "set-pipeline {shown}");
        let (status, body) =
            raw_request(&server, "PUT", &format!("/api/v1/teams/{}", encoded(&name)), &admin, &auth.to_string()).await;
        assert_eq!((status, body), (400, refusal("team", problem)), "set-team {shown}");

        // Renames name it in the body.
        let renamed =
            server.put_json("/api/v1/teams/main/pipelines/p/rename", Some(&admin), &json!({ "name": name })).await;
        assert_eq!(renamed.status(), 400, "rename-pipeline to {shown}");
        assert_eq!(renamed.json::<Value>().await.unwrap(), refusal("pipeline", problem));
        let renamed = server.put_json("/api/v1/teams/dev/rename", Some(&admin), &json!({ "name": name })).await;
        assert_eq!(renamed.status(), 400, "rename-team to {shown}");
        assert_eq!(renamed.json::<Value>().await.unwrap(), refusal("team", problem));

        // A set_pipeline step names it in a configuration.
        let config = json!({ "jobs": [{ "name": "j", "plan": [{ "set_pipeline": name, "file": "f.yml" }] }] });
        let set = server
            .request(Method::PUT, "/api/v1/teams/main/pipelines/setter/config", Some(&admin))
            .header("Content-Type", "application/json")
            .body(config.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(set.status(), 400, "set_pipeline step of {shown}");
        let errors = set.json::<Value>().await.unwrap()["errors"].to_string();
        assert!(errors.contains(&format!("pipeline name {problem}")), "set_pipeline step of {shown}: {errors}");
    }

    // Nothing was created or renamed.
    let pipelines = server.get_json("/api/v1/teams/main/pipelines", Some(&admin)).await;
    let names: Vec<&str> = pipelines.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["p"]);
    let teams = server.get_json("/api/v1/teams", Some(&admin)).await;
    let names: Vec<&str> = teams.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dev", "main"]);
    server.stop().await;
}

async fn odd_but_usable_names_still_only_warn(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let longest = "x".repeat(128);
    let created = server.set_pipeline(&admin, "main", &longest, PIPELINE).await;
    assert_eq!(created.status(), 201, "a name of exactly the longest length");
    let created = server.set_pipeline(&admin, "main", "My%20Pipeline", PIPELINE).await;
    assert_eq!(created.status(), 201);
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["warnings"][0]["type"], "invalid_identifier", "{body}");
    server.stop().await;
}

/// A name built from an across var is known only when the step runs.
async fn a_set_pipeline_step_refuses_an_unusable_name_when_it_runs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let template =
        serde_json::to_string(&json!({ "id": "2", "set_pipeline": { "name": "((.:name))", "file": "x/p.yml" } }))
            .unwrap();
    let plan = json!({ "id": "1", "across": {
        "vars": [{ "name": "name", "values": [".."] }],
        "substep_template": template,
    } });
    let id = server.execute(&admin, &plan).await;
    let watched = server.watch(&admin, id).await;
    assert_eq!(watched.status(), "errored");
    assert!(
        watched.output().contains("pipeline name must not be '..': URLs drop such path segments"),
        "{}",
        watched.output()
    );
    let pipelines = server.get_json("/api/v1/teams/main/pipelines", Some(&admin)).await;
    assert_eq!(pipelines, json!([]));
    server.stop().await;
}

on_both_backends!(
    unusable_team_and_pipeline_names_are_refused_everywhere,
    odd_but_usable_names_still_only_warn,
    a_set_pipeline_step_refuses_an_unusable_name_when_it_runs
);
