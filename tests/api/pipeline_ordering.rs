//! Ordering a team's pipelines: `fly order-pipelines` moves every instance
//! of a name together, `fly order-instanced-pipelines` orders the instances
//! within their group; and checking a prototype, which atc does not run.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

const PIPELINE: &str = "jobs:\n- name: j\n  plan:\n  - task: t\n    config: {platform: linux, run: {path: 'true'}}\n";

const ORDERING: &str = "/api/v1/teams/dev/pipelines/ci/ordering";

/// Sets pipeline `name` of team `dev`, an instance when `branch` is given.
async fn set(server: &TestServer, token: &str, name: &str, branch: Option<&str>) {
    let vars = branch.map(|b| format!("?vars.branch=%22{b}%22")).unwrap_or_default();
    let response = server
        .request(Method::PUT, &format!("/api/v1/teams/dev/pipelines/{name}/config{vars}"), Some(token))
        .header("Content-Type", "application/x-yaml")
        .body(PIPELINE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "set {name} {branch:?}: {}", response.text().await.unwrap());
}

/// The listing as `name` or `name/branch`.
fn listed(pipelines: Value) -> Vec<String> {
    let pipelines = pipelines.as_array().expect("a list").clone();
    pipelines
        .iter()
        .map(|p| match p["instance_vars"]["branch"].as_str() {
            Some(branch) => format!("{}/{branch}", p["name"].as_str().unwrap()),
            None => p["name"].as_str().unwrap().to_string(),
        })
        .collect()
}

/// The team's listing, which the all-pipelines listing must agree with.
async fn order(server: &TestServer, token: &str) -> Vec<String> {
    let team = listed(server.get_json("/api/v1/teams/dev/pipelines", Some(token)).await);
    let all = listed(server.get_json("/api/v1/pipelines", Some(token)).await);
    assert_eq!(team, all, "the team's listing and the listing of all pipelines");
    team
}

async fn errors(response: reqwest::Response) -> (StatusCode, String) {
    (response.status(), response.json::<Value>().await.unwrap()["errors"].to_string())
}

async fn start(backend: Backend) -> (TestServer, String) {
    let server = TestServer::start_with_users(backend, &[("viewer", "pw")]).await;
    let admin = server.admin_token().await;
    let auth = json!({ "auth": { "viewer": { "users": ["local:viewer"] } } });
    assert!(server.put_json("/api/v1/teams/dev", Some(&admin), &auth).await.status().is_success());
    (server, admin)
}

async fn instances_are_ordered_within_their_group(backend: Backend) {
    let (server, admin) = start(backend).await;
    set(&server, &admin, "first", None).await;
    set(&server, &admin, "ci", Some("a")).await;
    set(&server, &admin, "ci", Some("b")).await;
    set(&server, &admin, "other", None).await;
    // A new instance joins its group, last in it, before `other`.
    set(&server, &admin, "ci", Some("c")).await;
    assert_eq!(order(&server, &admin).await, ["first", "ci/a", "ci/b", "ci/c", "other"]);

    let body = json!([{"branch": "c"}, {"branch": "a"}, {"branch": "b"}]);
    assert_eq!(server.put_json(ORDERING, Some(&admin), &body).await.status(), 200);
    assert_eq!(order(&server, &admin).await, ["first", "ci/c", "ci/a", "ci/b", "other"]);
    // The unlisted keep their order after the listed.
    assert_eq!(server.put_json(ORDERING, Some(&admin), &json!([{"branch": "b"}])).await.status(), 200);
    assert_eq!(order(&server, &admin).await, ["first", "ci/b", "ci/c", "ci/a", "other"]);

    // One missing instance and nothing changes, not even the ones before it.
    let missing = json!([{"branch": "a"}, {"branch": "nope"}]);
    let (status, message) = errors(server.put_json(ORDERING, Some(&admin), &missing).await).await;
    assert_eq!(status, 400);
    assert!(message.contains(r#"pipeline 'ci/{\"branch\":\"nope\"}' not found"#), "{message}");
    // `{}` is the pipeline of that name without instance vars: there is none.
    let (status, message) = errors(server.put_json(ORDERING, Some(&admin), &json!([{}])).await).await;
    assert_eq!(status, 400);
    assert!(message.contains("pipeline 'ci' not found"), "{message}");
    for malformed in [json!({"branch": "a"}), json!(["a"])] {
        let (status, message) = errors(server.put_json(ORDERING, Some(&admin), &malformed).await).await;
        assert_eq!(status, 400, "{malformed}");
        assert!(message.contains("JSON body"), "{malformed}: {message}");
    }
    let viewer = server.login("viewer", "pw").await;
    assert_eq!(server.put_json(ORDERING, Some(&viewer), &json!([{"branch": "a"}])).await.status(), 403);
    assert_eq!(order(&server, &admin).await, ["first", "ci/b", "ci/c", "ci/a", "other"]);

    // After ordering, a new instance still goes last in its group.
    set(&server, &admin, "ci", Some("d")).await;
    assert_eq!(order(&server, &admin).await, ["first", "ci/b", "ci/c", "ci/a", "ci/d", "other"]);
    // Ordering the team's pipelines moves the group as one.
    let names = json!(["other", "ci"]);
    assert_eq!(server.put_json("/api/v1/teams/dev/pipelines/ordering", Some(&admin), &names).await.status(), 200);
    assert_eq!(order(&server, &admin).await, ["other", "ci/b", "ci/c", "ci/a", "ci/d", "first"]);
    server.stop().await;
}

const PROTOTYPED: &str = "prototypes:\n- name: some-prototype\n  type: mock\n\
                          jobs:\n- name: job\n  plan:\n  - run: some-message\n    type: some-prototype\n";

async fn checking_a_prototype_says_atc_runs_none(backend: Backend) {
    let (server, admin) = start(backend).await;
    let response = server.set_pipeline(&admin, "dev", "proto", PROTOTYPED).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    set(&server, &admin, "plain", None).await;
    let check = |pipeline: &str, prototype: &str| {
        let path = format!("/api/v1/teams/dev/pipelines/{pipeline}/prototypes/{prototype}/check");
        server.request(Method::POST, &path, Some(&admin)).json(&json!({})).send()
    };

    // Declared, but atc cannot run it.
    let (status, message) = errors(check("proto", "some-prototype").await.unwrap()).await;
    assert_eq!(status, 501);
    assert!(message.contains("atc does not run prototypes"), "{message}");
    // Not declared: a 404 that go-concourse prints.
    for pipeline in ["proto", "plain"] {
        let response = check(pipeline, "missing").await.unwrap();
        assert_eq!(response.status(), 404);
        let body = response.json::<Value>().await.unwrap();
        let detail = body["errors"][0]["detail"].as_str().unwrap_or_default();
        assert_eq!(
            detail,
            format!("pipeline '{pipeline}' has no prototype named 'missing' (atc does not support prototypes)")
        );
    }
    let response = check("nope", "some-prototype").await.unwrap();
    assert_eq!(response.status(), 404);
    let body = response.json::<Value>().await.unwrap();
    assert_eq!(body["errors"][0]["detail"], "pipeline 'nope' not found");
    server.stop().await;
}

on_both_backends!(instances_are_ordered_within_their_group, checking_a_prototype_says_atc_runs_none);
