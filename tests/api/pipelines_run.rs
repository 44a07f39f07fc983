//! Pipelines running for real: checks find versions, the scheduler
//! triggers jobs, builds run their steps on the local runtime. Scenarios
//! of Concourse's acceptance suite, in our own words. Those that take what
//! they run on ([`On`]) also run on the Kubernetes runtime
//! (`tests/cluster/pipelines.rs`); the first reads the local runtime's
//! work dir.

use serde_json::Value;

use super::support::{Backend, On, TestServer};

fn job_builds(builds: &Value) -> Vec<(String, String)> {
    builds
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap().to_string(), b["status"].as_str().unwrap().to_string()))
        .collect()
}

const SIMPLE_TRIGGER: &str = r#"
resources:
- name: some-resource
  type: mock
  source: {initial_version: first}
jobs:
- name: simple
  plan:
  - get: some-resource
    trigger: true
  - task: print-version
    config:
      platform: linux
      inputs: [{name: some-resource}]
      run: {path: cat, args: [some-resource/version]}
"#;

async fn a_new_version_triggers_the_job(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "trigger", SIMPLE_TRIGGER).await;
    let builds_path = "/api/v1/teams/main/pipelines/trigger/jobs/simple/builds";
    let builds = server
        .wait_for(&token, builds_path, "the first build to finish", |b| {
            b.as_array().is_some_and(|b| b.iter().any(|b| b["status"] == "succeeded"))
        })
        .await;
    assert_eq!(job_builds(&builds), [("1".to_string(), "succeeded".to_string())]);
    let watched = server.watch(&token, builds[0]["id"].as_i64().unwrap()).await;
    assert!(watched.log().contains("first"), "{}", watched.log());
    let get = watched.of_type("finish-get");
    assert_eq!(get[0]["data"]["version"], serde_json::json!({ "version": "first" }));
    // Each step that ran a process says where, right before it started (as
    // Concourse does; the worker is one the API lists).
    let workers = server.get_json("/api/v1/workers", Some(&token)).await;
    let order: Vec<(String, String)> = watched
        .events
        .iter()
        .filter(|e| ["selected-worker", "start-get", "start-task"].contains(&e["event"].as_str().unwrap_or("")))
        .map(|e| (e["event"].as_str().unwrap().to_string(), e["data"]["origin"]["id"].as_str().unwrap().to_string()))
        .collect();
    let (get_id, task_id) = (&order[1].1, &order[3].1);
    assert_eq!(
        order,
        [
            ("selected-worker".to_string(), get_id.clone()),
            ("start-get".to_string(), get_id.clone()),
            ("selected-worker".to_string(), task_id.clone()),
            ("start-task".to_string(), task_id.clone()),
        ]
    );
    let worker = &watched.of_type("selected-worker")[0]["data"]["selected_worker"];
    assert_eq!(worker, &workers[0]["name"], "{workers}");

    let resources = server.get_json(&format!("/api/v1/builds/{}/resources", builds[0]["id"]), Some(&token)).await;
    assert_eq!(resources["inputs"][0]["name"], "some-resource");
    assert_eq!(resources["inputs"][0]["first_occurrence"], true);

    // What the next build would get (`GET J/inputs`).
    let inputs = server.get_json("/api/v1/teams/main/pipelines/trigger/jobs/simple/inputs", Some(&token)).await;
    assert_eq!(
        inputs,
        serde_json::json!([{
            "name": "some-resource", "resource": "some-resource", "type": "mock",
            "source": { "initial_version": "first" }, "version": { "version": "first" }
        }])
    );

    // A new version (check from it) triggers the next build.
    let check = server
        .request(
            reqwest::Method::POST,
            "/api/v1/teams/main/pipelines/trigger/resources/some-resource/check",
            Some(&token),
        )
        .json(&serde_json::json!({ "from": { "version": "second" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), 201);
    let builds = server
        .wait_for(&token, builds_path, "the second build", |b| {
            b.as_array().is_some_and(|b| b.len() == 2 && b.iter().all(|b| b["status"] == "succeeded"))
        })
        .await;
    let second = server.watch(&token, builds[0]["id"].as_i64().unwrap()).await;
    assert!(second.log().contains("second"), "{}", second.log());

    // A manual trigger with nothing new runs with the same version.
    let (_, manual) = server.trigger_and_watch(&token, "trigger", "simple").await;
    assert_eq!(manual.status(), "succeeded");
    assert!(manual.log().contains("second"));
    // Finished builds leave nothing in the work dir.
    server.wait_for_artifact_count(0).await;
    server.stop().await;
}

crate::on_both_backends!(a_new_version_triggers_the_job);

const WEBHOOK: &str = r#"
resources:
- name: repo
  type: mock
  check_every: never
  webhook_token: s3cret
  source: {initial_version: hooked}
jobs:
- name: build
  plan:
  - get: repo
    trigger: true
"#;

/// A resource that is never checked on its own is checked when its
/// source calls the webhook with the right token, and triggers the job.
pub async fn a_webhook_with_the_right_token_checks_the_resource(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "hooked", WEBHOOK).await;
    let webhook = "/api/v1/teams/main/pipelines/hooked/resources/repo/check/webhook";

    let wrong = server.request(reqwest::Method::POST, &format!("{webhook}?webhook_token=guess"), None);
    assert_eq!(wrong.send().await.unwrap().status(), 401);
    let missing = server.request(reqwest::Method::POST, webhook, None);
    assert_eq!(missing.send().await.unwrap().status(), 400);
    let versions = "/api/v1/teams/main/pipelines/hooked/resources/repo/versions";
    assert_eq!(server.get_json(versions, Some(&token)).await, serde_json::json!([]));

    let right = server.request(reqwest::Method::POST, &format!("{webhook}?webhook_token=s3cret"), None);
    let response = right.send().await.unwrap();
    assert_eq!(response.status(), 201);
    let check: serde_json::Value = response.json().await.unwrap();
    assert!(check["id"].as_i64().is_some(), "{check}");
    let builds = server
        .wait_for(&token, "/api/v1/teams/main/pipelines/hooked/jobs/build/builds", "the triggered build", |b| {
            b.as_array().is_some_and(|b| b.iter().any(|b| b["status"] == "succeeded"))
        })
        .await;
    let watched = server.watch(&token, builds[0]["id"].as_i64().unwrap()).await;
    assert_eq!(watched.of_type("finish-get")[0]["data"]["version"], serde_json::json!({ "version": "hooked" }));
    server.stop().await;
}

crate::on_both_backends!(a_webhook_with_the_right_token_checks_the_resource);

const TASK_FILES: &str = r#"
resources:
- name: tasks
  type: mock
  source:
    create_files:
      greet.yml: |
        platform: linux
        run: {path: echo, args: [hello from a task file]}
jobs:
- name: from-file
  plan:
  - get: tasks
  - task: greet
    file: tasks/greet.yml
- name: missing-file
  plan:
  - get: tasks
  - task: greet
    file: tasks/nowhere.yml
"#;

/// A task's config from a file of an artifact; a file that is not there
/// errors the step, naming it.
pub async fn task_files_come_from_artifacts(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "files", TASK_FILES).await;
    let (_, found) = server.trigger_and_watch(&token, "files", "from-file").await;
    assert_eq!(found.status(), "succeeded", "{}", found.output());
    assert!(found.log().contains("hello from a task file"));
    let (_, missing) = server.trigger_and_watch(&token, "files", "missing-file").await;
    assert_eq!(missing.status(), "errored");
    assert!(missing.output().contains("tasks/nowhere.yml"), "{}", missing.output());
    server.stop().await;
}

crate::on_both_backends!(task_files_come_from_artifacts);

const CHECKED: &str = r#"
resources:
- name: good
  type: mock
  check_every: never
  source: {initial_version: one}
- name: broken
  type: mock
  check_every: never
  source: {check_failure: "no such repository"}
- name: idle
  type: mock
  check_every: never
jobs:
- name: uses-them
  plan:
  - get: good
  - get: broken
  - get: idle
"#;

/// A resource carries its latest check as `build`, as Concourse's does:
/// the web UI's check status, and where it finds the check's log.
async fn a_resource_shows_its_latest_check(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "checked", CHECKED).await;
    let resources = "/api/v1/teams/main/pipelines/checked/resources";
    let mut checks = Vec::new();
    for name in ["good", "broken", "good"] {
        let response = server
            .request(reqwest::Method::POST, &format!("{resources}/{name}/check"), Some(&token))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let build: serde_json::Value = response.json().await.unwrap();
        let id = build["id"].as_i64().unwrap();
        server.wait_for(&token, &format!("/api/v1/builds/{id}"), "the check to end", |b| b["end_time"].is_i64()).await;
        checks.push(id);
    }
    let listed = server.get_json(resources, Some(&token)).await;
    let check_of = |name: &str| listed.as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()["build"].clone();
    assert_eq!(check_of("good")["id"], checks[2], "the latest of two checks");
    assert_eq!(check_of("good")["status"], "succeeded");
    assert_eq!(check_of("broken")["id"], checks[1]);
    assert!(["failed", "errored"].contains(&check_of("broken")["status"].as_str().unwrap()));
    assert!(check_of("idle").is_null(), "never checked: no build");
    let one = server.get_json(&format!("{resources}/broken"), Some(&token)).await;
    assert_eq!(one["build"]["id"], checks[1]);
    server.stop().await;
}

crate::on_both_backends!(a_resource_shows_its_latest_check);
