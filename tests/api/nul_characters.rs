//! NUL characters (`\u0000`) wherever text enters atc: refused with a 400
//! naming the place on both databases (PostgreSQL cannot store them), and a
//! clear error of the step when a resource script prints one.

use std::os::unix::fs::PermissionsExt;

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

const PIPELINE: &str = "resources:\n- name: r\n  type: mock\njobs:\n- name: j\n  plan:\n  - get: r\n";
const P: &str = "/api/v1/teams/main/pipelines/p";

/// Asserts a 400 whose one error names `place` and the NUL character.
async fn assert_refused(response: reqwest::Response, place: &str) {
    assert_eq!(response.status(), 400, "{place}");
    let body: Value = response.json().await.unwrap();
    let message = body["errors"][0].as_str().unwrap_or_default().to_string();
    assert!(message.contains(place) && message.contains("NUL character"), "{place}: {body}");
}

async fn set_json_pipeline(server: &TestServer, token: &str, name: &str, config: &Value) -> reqwest::Response {
    server
        .request(Method::PUT, &format!("/api/v1/teams/main/pipelines/{name}/config"), Some(token))
        .header("Content-Type", "application/json")
        .body(config.to_string())
        .send()
        .await
        .unwrap()
}

async fn nul_characters_in_pipeline_configs_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let job = |name: &str| json!({ "name": name, "plan": [{ "get": "r" }] });
    let resource = |name: &str| json!({ "name": name, "type": "mock" });
    let cases = [
        ("jobs[0].name", json!({ "resources": [resource("r")], "jobs": [job("a\u{0}b")] })),
        ("resources[1].name", json!({ "resources": [resource("r"), resource("s\u{0}")], "jobs": [job("j")] })),
        (
            "groups[0].name",
            json!({ "resources": [resource("r")], "jobs": [job("j")], "groups": [{ "name": "g\u{0}", "jobs": ["j"] }] }),
        ),
        (
            "display.background_image",
            json!({ "resources": [resource("r")], "jobs": [job("j")], "display": { "background_image": "x\u{0}" } }),
        ),
    ];
    for (place, config) in cases {
        assert_refused(set_json_pipeline(&server, &token, "p", &config).await, place).await;
    }
    // YAML spells it "\0".
    let yaml = "resources:\n- name: r\n  type: mock\njobs:\n- name: \"j\\0\"\n  plan: [{get: r}]\n";
    assert_refused(server.set_pipeline(&token, "main", "p", yaml).await, "jobs[0].name").await;
    assert_eq!(server.test_db.count("SELECT COUNT(*) FROM pipelines").await, 0, "nothing was saved");
    server.stop().await;
}

async fn nul_characters_in_request_bodies_and_urls_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "p", PIPELINE).await;
    let (build_id, _) = server.trigger_and_watch(&token, "p", "j").await;

    let wall = server.put_json("/api/v1/wall", Some(&token), &json!({ "message": "down\u{0}time" })).await;
    assert_refused(wall, "'message'").await;
    let pin_comment = format!("{P}/resources/r/pin_comment");
    let pin = server.put_json(&pin_comment, Some(&token), &json!({ "pin_comment": "\u{0}" })).await;
    assert_refused(pin, "'pin_comment'").await;
    let build_comment = format!("/api/v1/builds/{build_id}/comment");
    let comment = server.put_json(&build_comment, Some(&token), &json!({ "comment": "a\u{0}" })).await;
    assert_refused(comment, "'comment'").await;
    let check = server
        .request(Method::POST, &format!("{P}/resources/r/check"), Some(&token))
        .json(&json!({ "from": { "version": "v\u{0}" } }))
        .send()
        .await
        .unwrap();
    assert_refused(check, "'from.version'").await;
    let plan = json!({ "id": "1", "task": { "name": "t", "config": {
        "platform": "linux", "params": { "X": "\u{0}" }, "run": { "path": "true" } } } });
    let execute =
        server.request(Method::POST, "/api/v1/teams/main/builds", Some(&token)).json(&plan).send().await.unwrap();
    assert_refused(execute, "'task.config.params.X'").await;
    let team = json!({ "auth": { "owner": { "users": ["local:ad\u{0}min"], "groups": [] } } });
    assert_refused(server.put_json("/api/v1/teams/main", Some(&token), &team).await, "'auth.owner.users[0]'").await;

    // Looking a name up in the database with a NUL failed on PostgreSQL.
    assert_refused(server.get(&format!("{P}/jobs/j%00"), Some(&token)).await, "path").await;
    assert_refused(server.get(&format!("{P}/resources/r%00/versions"), Some(&token)).await, "path").await;
    assert_refused(server.get(&format!("{P}/resources/r/versions?filter=v:%00"), Some(&token)).await, "query").await;

    assert_eq!(server.get_json("/api/v1/wall", Some(&token)).await, json!({}));
    assert_eq!(server.get_json(&format!("{P}/resources/r"), Some(&token)).await["pin_comment"], Value::Null);
    let build = server.get_json(&format!("/api/v1/builds/{build_id}"), Some(&token)).await;
    assert_eq!(build["comment"].as_str().unwrap_or_default(), "");
    assert_eq!(
        server.test_db.count("SELECT COUNT(*) FROM builds WHERE job_id IS NULL AND resource_id IS NULL").await,
        0
    );

    // Text that only looks like the escape is text.
    let looks_like = json!({ "pin_comment": "see \\u0000" });
    let pin = server.put_json(&pin_comment, Some(&token), &looks_like).await;
    assert_eq!(pin.status(), 200);
    assert_eq!(server.test_db.strings("SELECT pin_comment FROM resources").await, ["see \\u0000"]);
    server.stop().await;
}

/// A resource type `nul` whose scripts run `check`, `in` and `out` with
/// the request in `$request`.
fn nul_type(check: &str, get: &str, put: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("nul")).unwrap();
    for (name, body) in [("check", check), ("in", get), ("out", put)] {
        let path = dir.path().join("nul").join(name);
        std::fs::write(&path, format!("#!/bin/sh\nrequest=$(cat)\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// Runs a check of `p`'s `resource` and returns its watched build.
async fn check(server: &TestServer, token: &str, resource: &str) -> crate::support::Watched {
    let response = server
        .request(Method::POST, &format!("{P}/resources/{resource}/check"), Some(token))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    server.watch(token, id).await
}

async fn check_errors(server: &TestServer) -> Vec<String> {
    server.test_db.strings("SELECT check_error FROM resources WHERE check_error IS NOT NULL").await
}

async fn nul_characters_from_resource_scripts_error_the_step(backend: Backend) {
    let types = nul_type(
        r#"case "$request" in *nul-check*) echo '[{"ref":"a\u0000b"}]' ;; *) echo '[{"ref":"1"}]' ;; esac"#,
        r#"echo '{"version":{"ref":"1"},"metadata":[{"name":"m","value":"x\u0000"}]}'"#,
        r#"echo '{"version":{"ref\u0000":"2"}}'"#,
    );
    let server = TestServer::start_with_resource_types(backend, types.path()).await;
    let token = server.admin_token().await;
    let pipeline = "resources:\n\
                    - {name: bad, type: nul, check_every: never, source: {mode: nul-check}}\n\
                    - {name: r, type: nul, check_every: never}\n\
                    jobs:\n\
                    - {name: bad, plan: [{get: bad}]}\n\
                    - {name: get, plan: [{get: r}]}\n\
                    - {name: put, plan: [{put: r, no_get: true}]}\n";
    server.set_and_unpause(&token, "p", pipeline).await;

    let checked = check(&server, &token, "bad").await;
    assert_eq!(checked.status(), "errored", "{:?}", checked.events);
    assert!(checked.output().contains("the value of 'ref' contains a NUL character"), "{}", checked.output());
    assert_eq!(server.test_db.count("SELECT COUNT(*) FROM resource_versions").await, 0, "no version was saved");
    let recorded = check_errors(&server).await;
    assert!(recorded.len() == 1 && recorded[0].contains("NUL character"), "the check's error is kept: {recorded:?}");

    let (_, got) = server.trigger_and_watch(&token, "p", "get").await;
    assert_eq!(got.status(), "errored", "{:?}", got.events);
    assert!(got.output().contains("the field 'm' contains a NUL character"), "{}", got.output());
    let (_, put) = server.trigger_and_watch(&token, "p", "put").await;
    assert_eq!(put.status(), "errored", "{:?}", put.events);
    assert!(put.output().contains("the key 'ref\\0' contains a NUL character"), "{}", put.output());
    assert_eq!(server.test_db.count("SELECT COUNT(*) FROM resource_versions").await, 1, "only the good check's");
    server.stop().await;
}

/// A raw NUL byte is not JSON; the error quoting it is still stored.
async fn a_nul_byte_printed_by_a_check_is_quoted_in_its_stored_error(backend: Backend) {
    let types = nul_type(r#"printf '[{"ref":"a\000b"}]'"#, "exit 1", "exit 1");
    let server = TestServer::start_with_resource_types(backend, types.path()).await;
    let token = server.admin_token().await;
    let pipeline = "resources:\n- {name: r, type: nul, check_every: never}\njobs:\n- {name: j, plan: [{get: r}]}\n";
    server.set_and_unpause(&token, "p", pipeline).await;
    let checked = check(&server, &token, "r").await;
    assert_eq!(checked.status(), "errored", "{:?}", checked.events);
    assert!(checked.output().contains(r#"[{"ref":"a\0b"}]"#), "{}", checked.output());
    let recorded = check_errors(&server).await;
    assert!(recorded.len() == 1 && recorded[0].contains(r#"printed invalid JSON"#), "{recorded:?}");
    server.stop().await;
}

on_both_backends!(
    nul_characters_in_pipeline_configs_are_refused,
    nul_characters_in_request_bodies_and_urls_are_refused,
    nul_characters_from_resource_scripts_error_the_step,
    a_nul_byte_printed_by_a_check_is_quoted_in_its_stored_error,
);
