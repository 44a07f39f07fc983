//! `fly clear-task-cache`, `fly clear-versions` and `fly
//! clear-resource-cache`, sent as fly sends them, against pipelines that
//! really ran.

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

const CACHING: &str = r#"
jobs:
- name: build
  plan:
  - task: compile
    config:
      platform: linux
      caches: [{path: deps}]
      run:
        path: sh
        args: [-c, "if [ -f deps/marker ]; then echo cache-was-kept; else echo cache-was-empty; fi; echo x > deps/marker"]
"#;

async fn delete_json(server: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let response = server.request(Method::DELETE, path, Some(token)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn run_compile(server: &TestServer, token: &str) -> String {
    let (_, watched) = server.trigger_and_watch(token, "caching", "build").await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.output());
    watched.log()
}

async fn clearing_a_task_cache_empties_it_for_the_next_run(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "caching", CACHING).await;
    assert!(run_compile(&server, &token).await.contains("cache-was-empty"));
    assert!(run_compile(&server, &token).await.contains("cache-was-kept"));

    // `fly volumes` lists it.
    let volumes = server.get_json("/api/v1/teams/main/volumes", Some(&token)).await;
    assert_eq!(volumes.as_array().unwrap().len(), 1, "{volumes}");
    assert_eq!(volumes[0]["type"], "task-cache");
    assert_eq!(
        (&volumes[0]["pipeline_name"], &volumes[0]["job_name"], &volumes[0]["step_name"], &volumes[0]["path"]),
        (&json!("caching"), &json!("build"), &json!("compile"), &json!("deps"))
    );
    server.wait_for_cache_count(1).await;

    let cache = "/api/v1/teams/main/pipelines/caching/jobs/build/tasks/compile/cache";
    let (status, body) = delete_json(&server, &token, &format!("{cache}?cache_path=elsewhere")).await;
    assert_eq!((status, body), (200, json!({ "caches_removed": 0 })), "only the path asked for");
    let (status, body) = delete_json(&server, &token, cache).await;
    assert_eq!((status, body), (200, json!({ "caches_removed": 1 })));
    assert_eq!(delete_json(&server, &token, cache).await.1, json!({ "caches_removed": 0 }));
    // The collector deletes the cleared cache's files.
    server.wait_for_cache_count(0).await;
    assert_eq!(server.get_json("/api/v1/teams/main/volumes", Some(&token)).await, json!([]));

    assert!(run_compile(&server, &token).await.contains("cache-was-empty"));
    assert!(run_compile(&server, &token).await.contains("cache-was-kept"));

    let (status, body) =
        delete_json(&server, &token, "/api/v1/teams/main/pipelines/caching/jobs/nope/tasks/compile/cache").await;
    assert_eq!(status, 404, "{body}");
    server.stop().await;
}

const VERSIONED: &str = r#"
resource_types:
- name: custom-mock
  type: mock
  source: {initial_version: type-version}
resources:
- name: repo
  type: mock
  source: {initial_version: first}
jobs:
- name: use
  plan:
  - get: repo
    trigger: true
"#;

async fn versions_of(server: &TestServer, token: &str) -> Value {
    server.get_json("/api/v1/teams/main/pipelines/versioned/resources/repo/versions", Some(token)).await
}

async fn check(server: &TestServer, token: &str, path: &str) {
    let response = server.request(Method::POST, path, Some(token)).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), 201, "{path}");
    let build: Value = response.json().await.unwrap();
    let watched = server.watch(token, build["id"].as_i64().unwrap()).await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.output());
}

async fn clearing_versions_starts_the_history_over(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "versioned", VERSIONED).await;
    let builds_path = "/api/v1/teams/main/pipelines/versioned/jobs/use/builds";
    let builds = server
        .wait_for(&token, builds_path, "the job to run with the first version", |b| {
            b.as_array().is_some_and(|b| b.iter().any(|b| b["status"] == "succeeded"))
        })
        .await;
    let build_id = builds[0]["id"].as_i64().unwrap();
    let before = versions_of(&server, &token).await;
    assert_eq!(before[0]["version"], json!({ "version": "first" }));

    // What fly asks before it clears, and what it clears.
    let shared = server.get_json("/api/v1/teams/main/pipelines/versioned/resources/repo/shared", Some(&token)).await;
    assert_eq!(
        shared,
        json!({ "resources": [{ "name": "repo", "pipeline_name": "versioned", "team_name": "main" }], "resource_types": [] })
    );
    let versions = "/api/v1/teams/main/pipelines/versioned/resources/repo/versions";
    assert_eq!(delete_json(&server, &token, versions).await, (200, json!({ "versions_removed": 1 })));
    assert_eq!(versions_of(&server, &token).await, json!([]));
    assert_eq!(delete_json(&server, &token, versions).await.1, json!({ "versions_removed": 0 }));
    // The build keeps the record of what it used.
    let resources = server.get_json(&format!("/api/v1/builds/{build_id}/resources"), Some(&token)).await;
    assert_eq!(resources["inputs"][0]["version"], json!({ "version": "first" }));

    // Found again, the version comes back as it was: the job does not run again for it.
    check(&server, &token, "/api/v1/teams/main/pipelines/versioned/resources/repo/check").await;
    let after = versions_of(&server, &token).await;
    assert_eq!(after.as_array().unwrap().len(), 1);
    assert_eq!(after[0]["id"], before[0]["id"]);
    let inputs = "/api/v1/teams/main/pipelines/versioned/jobs/use/inputs";
    server
        .wait_for(&token, inputs, "the job's inputs to resolve again", |i| {
            i[0]["version"] == json!({ "version": "first" })
        })
        .await;
    let job = server.get_json("/api/v1/teams/main/pipelines/versioned/jobs/use", Some(&token)).await;
    assert!(job.get("has_new_inputs").is_none(), "no new input to trigger on: {job}");

    // A resource type's versions.
    let type_path = "/api/v1/teams/main/pipelines/versioned/resource-types/custom-mock";
    check(&server, &token, &format!("{type_path}/check")).await;
    let shared = server.get_json(&format!("{type_path}/shared"), Some(&token)).await;
    assert_eq!(shared["resource_types"][0]["name"], "custom-mock");
    assert_eq!(shared["resources"], json!([]));
    let cleared = delete_json(&server, &token, &format!("{type_path}/versions")).await;
    assert_eq!(cleared, (200, json!({ "versions_removed": 1 })));
    assert_eq!(delete_json(&server, &token, &format!("{type_path}/versions")).await.1["versions_removed"], 0);

    let (status, _) =
        delete_json(&server, &token, "/api/v1/teams/main/pipelines/versioned/resources/nope/versions").await;
    assert_eq!(status, 404);
    server.stop().await;
}

async fn resource_caches_are_never_kept(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "versioned", VERSIONED).await;
    // fly sends the version to clear the cache of in the body.
    let response = server
        .request(Method::DELETE, "/api/v1/teams/main/pipelines/versioned/resources/repo/cache", Some(&token))
        .json(&json!({ "version": { "version": "first" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "caches_removed": 0 }));
    let (status, _) = delete_json(&server, &token, "/api/v1/teams/main/pipelines/versioned/resources/nope/cache").await;
    assert_eq!(status, 404);
    server.stop().await;
}

on_both_backends!(
    clearing_a_task_cache_empties_it_for_the_next_run,
    clearing_versions_starts_the_history_over,
    resource_caches_are_never_kept,
);
