//! Documents (configurations, JSON bodies) nested past their limits: input
//! ten times as deep as a limit is a 400 naming the limit, and the server,
//! whose handlers run on worker threads with small stacks, is still up
//! afterwards.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

pub(crate) const DOCUMENT_DEPTH: usize = 64;
const JSON_DEPTH: usize = 127;

/// The `errors` of a 400.
pub(crate) async fn refused(response: reqwest::Response) -> Vec<String> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    body["errors"].as_array().unwrap_or_else(|| panic!("no errors in {body}")).iter().map(|e| e.to_string()).collect()
}

pub(crate) async fn still_up(server: &TestServer) {
    assert_eq!(server.get("/api/v1/info", None).await.status(), 200, "the server answers after it");
}

pub(crate) async fn set_config(
    server: &TestServer,
    token: &str,
    content_type: &str,
    config: String,
) -> reqwest::Response {
    server
        .request(Method::PUT, "/api/v1/teams/main/pipelines/deep/config", Some(token))
        .header("Content-Type", content_type)
        .body(config)
        .send()
        .await
        .unwrap()
}

/// A job whose one task has `params: {a: <value>}`.
fn with_params(value: &str) -> String {
    format!(
        "jobs:\n- name: j\n  plan:\n  - task: t\n    config:\n      platform: linux\n      run: {{path: 'true'}}\n      params:\n        a: {value}\n"
    )
}

async fn configurations_nested_past_the_document_depth_are_400s(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let levels = 10 * DOCUMENT_DEPTH;
    let expected = format!("the document is nested more than {DOCUMENT_DEPTH} levels deep");

    let flow = with_params(&format!("{}{}", "[".repeat(levels), "]".repeat(levels)));
    let mut block = with_params("");
    for level in 0..levels {
        block.push_str(&format!("{}k:\n", " ".repeat(10 + 2 * level)));
    }
    let json_config = format!(
        r#"{{"jobs":[{{"name":"j","plan":[{{"task":"t","config":{{"platform":"linux","run":{{"path":"true"}},"params":{{"a":{}{}}}}}}}]}}]}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    );
    // JSON the JSON parser takes, but deeper than a configuration may be.
    let json_within_parser =
        json_config.replace(&"[".repeat(levels), &"[".repeat(100)).replace(&"]".repeat(levels), &"]".repeat(100));
    // Each alias replays the one before inside more lists.
    let mut aliases = format!("a0: &a0 {}1{}\n", "[".repeat(40), "]".repeat(40));
    for i in 1..16 {
        aliases.push_str(&format!("a{i}: &a{i} {}*a{}{}\n", "[".repeat(40), i - 1, "]".repeat(40)));
    }
    for (what, content_type, config) in [
        ("flow YAML", "application/x-yaml", flow),
        ("block YAML", "application/x-yaml", block),
        ("JSON", "application/json", json_config),
        ("JSON within the parser's limit", "application/json", json_within_parser),
        ("aliases", "application/x-yaml", aliases),
    ] {
        let errors = refused(set_config(&server, &token, content_type, config).await).await;
        assert!(errors[0].contains(&expected), "{what}: {errors:?}");
    }
    still_up(&server).await;
    server.stop().await;
}

async fn a_yaml_document_over_the_node_budget_says_so_in_plain_words(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let values = vec!["1"; 260_000].join(",");
    let errors =
        refused(set_config(&server, &token, "application/x-yaml", with_params(&format!("[{values}]"))).await).await;
    assert!(errors[0].contains("the document has more than 250000 values"), "{errors:?}");
    assert!(!errors[0].contains("budget") && !errors[0].contains("Nodes {"), "no parser internals: {errors:?}");
    still_up(&server).await;
    server.stop().await;
}

/// `{"a": {"a": ... }}`, `levels` objects deep.
fn nested_objects(levels: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(levels), "}".repeat(levels))
}

async fn json_bodies_nested_past_the_parser_limit_are_400s(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let deep = nested_objects(10 * JSON_DEPTH);
    let deep_plan = format!(r#"{{"id":"1","do":[{}]}}"#, {
        let mut plan = String::from(r#"{"id":"x","task":{"name":"t"}}"#);
        for i in 0..10 * JSON_DEPTH {
            plan = format!(r#"{{"id":"{i}","try":{{"step":{plan}}}}}"#);
        }
        plan
    });
    let deep_config = format!(r#"{{"id":"1","task":{{"name":"t","config":{deep}}}}}"#);
    let pipeline = "resources:\n- name: r\n  type: mock\njobs:\n- name: j\n  plan:\n  - get: r\n";
    assert!(server.set_pipeline(&token, "main", "p", pipeline).await.status().is_success());
    let expected = format!("JSON body is nested more than {JSON_DEPTH} levels deep");
    for (method, path, body) in [
        (Method::POST, "/api/v1/teams/main/builds", deep_plan),
        (Method::POST, "/api/v1/teams/main/builds", deep_config),
        (Method::POST, "/api/v1/teams/main/pipelines/p/resources/r/check", format!(r#"{{"from":{deep}}}"#)),
    ] {
        let response = server
            .request(method, path, Some(&token))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let errors = refused(response).await;
        assert!(errors[0].contains(&expected), "{path}: {errors:?}");
    }
    still_up(&server).await;
    server.stop().await;
}

on_both_backends!(
    configurations_nested_past_the_document_depth_are_400s,
    a_yaml_document_over_the_node_budget_says_so_in_plain_words,
    json_bodies_nested_past_the_parser_limit_are_400s,
);
