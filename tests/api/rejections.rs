//! Malformed requests are answered `{"errors": [...]}` with a 4xx that says
//! what is wrong, whatever part of the request is malformed.

use atc::db::NewBuild;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

/// The `errors` of an answer, after checking its status and JSON shape:
/// strings, except a 404's, which are JSON:API errors (go-concourse prints
/// their `detail`).
async fn errors(response: reqwest::Response, status: StatusCode) -> Vec<String> {
    assert_eq!(response.status(), status, "status of {}", response.url());
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(content_type.as_deref(), Some("application/json"), "content type of {}", response.url());
    let body: Value = response.json().await.expect("a JSON body");
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors list in {body}"))
        .iter()
        .map(|e| {
            if status == StatusCode::NOT_FOUND {
                assert_eq!(e["status"], "404", "{body}");
                e["detail"].as_str().expect("a 404's errors have a detail").to_string()
            } else {
                e.as_str().expect("errors are strings").to_string()
            }
        })
        .collect()
}

async fn the_largest_last_event_id_is_refused_not_wrapped_around(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let db = &server.test_db.db;
    let team = db.find_team("main").await.unwrap().unwrap();
    let id = db.create_build(&NewBuild { team_id: team.id, name: "1".into(), ..Default::default() }).await.unwrap();

    let response = server
        .request(Method::GET, &format!("/api/v1/builds/{id}/events"), Some(&token))
        .header("Last-Event-ID", i64::MAX.to_string())
        .send()
        .await
        .expect("an answer, not a dropped connection");
    let errors = errors(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(errors, [format!("Last-Event-ID must be an event number from 0 to {}", i64::MAX - 1)]);

    // The number before it is fine: nothing comes after it.
    let response = server
        .request(Method::GET, &format!("/api/v1/builds/{id}/events"), Some(&token))
        .header("Last-Event-ID", (i64::MAX - 1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The build is still running: close the stream so the server can stop.
    drop(response);
    server.stop().await;
}

on_both_backends!(the_largest_last_event_id_is_refused_not_wrapped_around);

/// Every parameter of every route, percent-encoding a byte that is not UTF-8.
async fn a_path_that_is_not_utf8_is_a_json_400_naming_the_parameter(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let mut checked = 0;
    for spec in atc::api::routes::route_specs() {
        let params: Vec<&str> = spec.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
        for param in params {
            let path = spec.path.replace(&format!("{{{param}}}"), "%FF%FE").replace(['{', '}'], "");
            let response = server.request(spec.method.clone(), &path, Some(&token)).send().await.unwrap();
            let errors = errors(response, StatusCode::BAD_REQUEST).await;
            assert_eq!(errors, [format!("the path's {param} is not valid UTF-8 once percent-decoded")], "{path}");
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} parameters checked");
    // The anonymous caller of a public route meets the same answer.
    let response = server.get("/api/v1/teams/%FF/pipelines", None).await;
    assert_eq!(
        errors(response, StatusCode::BAD_REQUEST).await,
        ["the path's team_name is not valid UTF-8 once percent-decoded"]
    );
    server.stop().await;
}

async fn a_method_a_route_does_not_take_is_a_json_405(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server.request(Method::POST, "/api/v1/info", None).send().await.unwrap();
    let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(errors(response, StatusCode::METHOD_NOT_ALLOWED).await, ["POST is not allowed on /api/v1/info"]);
    assert_eq!(allow.as_deref(), Some("GET,HEAD"));
    let response = server.request(Method::GET, "/sky/issuer/token", None).send().await.unwrap();
    assert_eq!(errors(response, StatusCode::METHOD_NOT_ALLOWED).await, ["GET is not allowed on /sky/issuer/token"]);
    let response = server.get("/api/v1/no-such-thing", None).await;
    assert_eq!(errors(response, StatusCode::NOT_FOUND).await, ["no such route"]);
    server.stop().await;
}

on_both_backends!(
    a_path_that_is_not_utf8_is_a_json_400_naming_the_parameter,
    a_method_a_route_does_not_take_is_a_json_405
);
