//! Malformed requests are answered `{"errors": [...]}` with a 4xx that says
//! what is wrong, whatever part of the request is malformed.

use atc::db::NewBuild;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

/// The `errors` of an answer, after checking its status and JSON shape.
async fn errors(response: reqwest::Response, status: StatusCode) -> Vec<String> {
    assert_eq!(response.status(), status, "status of {}", response.url());
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(content_type.as_deref(), Some("application/json"), "content type of {}", response.url());
    let body: Value = response.json().await.expect("a JSON body");
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors list in {body}"))
        .iter()
        .map(|e| e.as_str().expect("errors are strings").to_string())
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
