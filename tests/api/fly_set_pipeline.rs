//! `fly set-pipeline` as fly 8.2.5 sends it (go-concourse's
//! `CreateOrUpdatePipelineConfig`): the config version header is always
//! there, empty when the pipeline is new.

use reqwest::Method;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

const PIPELINE: &str = "jobs:\n- name: hello\n  plan:\n  - task: say\n    config:\n      platform: linux\n      run: {path: echo, args: [hi]}\n";

/// The request fly makes, header for header.
fn fly_save(server: &TestServer, token: &str, config_version: &str) -> reqwest::RequestBuilder {
    server
        .request(Method::PUT, "/api/v1/teams/main/pipelines/hello/config", Some(token))
        .header("User-Agent", "Go-http-client/1.1")
        .header("Accept-Encoding", "gzip")
        .header("Content-Type", "application/x-yaml")
        .header("X-Concourse-Config-Version", config_version)
        .body(PIPELINE)
}

async fn flys_first_set_pipeline_with_an_empty_config_version_creates_the_pipeline(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;

    // fly first asks for the current config; a new pipeline has none.
    let current = server.get("/api/v1/teams/main/pipelines/hello/config", Some(&token)).await;
    assert_eq!(current.status(), 404);

    let created = fly_save(&server, &token, "").send().await.unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    // fly refuses a success answer whose type is not exactly this.
    assert_eq!(created.headers()["content-type"], "application/json");
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["warnings"], serde_json::json!([]));

    // The next set-pipeline sends the version it was given.
    let current = server.get("/api/v1/teams/main/pipelines/hello/config", Some(&token)).await;
    let version = current.headers()["x-concourse-config-version"].to_str().unwrap().to_string();
    assert_eq!(fly_save(&server, &token, &version).send().await.unwrap().status(), 200);

    // A version that is not a number is still refused.
    let malformed = fly_save(&server, &token, "one").send().await.unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["errors"][0], "config version is malformed: expected an integer");
    server.stop().await;
}

on_both_backends!(flys_first_set_pipeline_with_an_empty_config_version_creates_the_pipeline);
