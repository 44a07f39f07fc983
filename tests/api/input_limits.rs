//! What keeps one client from making the server hold a lot of memory:
//! free text limited to Concourse-sized values, small bodies for small
//! endpoints, and list pages of a bounded size written out as they go.

use atc::db::{PipelineRef, VersionOwner};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

const PIPELINE: &str = "resources:\n- name: r\n  type: mock\njobs:\n- name: j\n  plan:\n  - get: r\n";
const R: &str = "/api/v1/teams/main/pipelines/p/resources/r";

async fn error_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["errors"][0].as_str().unwrap_or_default().to_string()
}

async fn comments_and_wall_messages_longer_than_their_limit_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "p", PIPELINE).await;
    let (build_id, _) = server.trigger_and_watch(&token, "p", "j").await;
    let pin_comment = format!("{R}/pin_comment");

    // The issue's 5 MB comment is not even read.
    let huge = server.put_json(&pin_comment, Some(&token), &json!({ "pin_comment": "x".repeat(5 << 20) })).await;
    assert_eq!(huge.status(), 413);
    assert_eq!(error_of(huge).await, "request body is larger than 262144 bytes");

    let too_long = "x".repeat(4097);
    for (path, field, body) in [
        (pin_comment.clone(), "pin_comment", json!({ "pin_comment": too_long })),
        (format!("/api/v1/builds/{build_id}/comment"), "comment", json!({ "comment": too_long })),
        ("/api/v1/wall".to_string(), "message", json!({ "message": too_long })),
    ] {
        let response = server.put_json(&path, Some(&token), &body).await;
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(error_of(response).await, format!("{field} is 4097 bytes long; at most 4096 bytes are allowed"));
    }
    assert_eq!(server.get_json("/api/v1/wall", Some(&token)).await, json!({}));
    assert_eq!(server.test_db.strings("SELECT comment FROM builds WHERE comment <> ''").await.len(), 0);

    let longest = "y".repeat(4096);
    let stored = server.put_json(&pin_comment, Some(&token), &json!({ "pin_comment": longest })).await;
    assert_eq!(stored.status(), 200);
    assert_eq!(server.test_db.strings("SELECT pin_comment FROM resources").await, [longest]);
    server.stop().await;
}

async fn save_versions(server: &TestServer, versions: &[Value]) -> Vec<i64> {
    let db = &server.test_db.db;
    let pipeline = db.find_pipeline("main", &PipelineRef::named("p")).await.unwrap().unwrap();
    let resource = db.find_resource(pipeline.id, "r").await.unwrap().unwrap();
    let batch: Vec<(Value, Value)> = versions.iter().map(|v| (v.clone(), json!([]))).collect();
    db.save_versions(VersionOwner::Resource(resource.id), &resource.config_hash, &batch, None).await.unwrap()
}

fn links(response: &reqwest::Response) -> Vec<String> {
    response.headers().get_all("link").iter().map(|l| l.to_str().unwrap().to_string()).collect()
}

fn numbers(page: &Value) -> Vec<i64> {
    page.as_array().unwrap().iter().map(|v| v["version"]["n"].as_str().unwrap().parse().unwrap()).collect()
}

async fn version_pages_are_at_most_a_thousand_long_and_streamed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    assert!(server.set_pipeline(&token, "main", "p", PIPELINE).await.status().is_success());
    let versions: Vec<Value> = (1..=1100).map(|n| json!({ "n": n.to_string() })).collect();
    let ids = save_versions(&server, &versions).await;

    let first = server.get(&format!("{R}/versions?limit=100000"), Some(&token)).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.content_length(), None, "written as it is serialized, not measured first");
    assert_eq!(links(&first), [format!("<{}{R}/versions?to={}&limit=1000>; rel=\"next\"", server.url, ids[99])]);
    let page: Value = first.json().await.unwrap();
    assert_eq!(numbers(&page), (101..=1100).rev().collect::<Vec<_>>());
    let rest = server.get_json(&format!("{R}/versions?to={}&limit=1000", ids[99]), Some(&token)).await;
    assert_eq!(numbers(&rest), (1..=100).rev().collect::<Vec<_>>());

    let builds = server.get("/api/v1/builds?limit=100000", Some(&token)).await;
    assert_eq!(builds.status(), 200);
    assert_eq!(builds.content_length(), None);
    assert_eq!(builds.json::<Value>().await.unwrap(), json!([]));
    server.stop().await;
}

/// Pages of a filtered history skip what does not match, in both directions.
async fn filtered_version_pages_link_to_their_matching_neighbours(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    assert!(server.set_pipeline(&token, "main", "p", PIPELINE).await.status().is_success());
    let versions: Vec<Value> =
        (1..=30).map(|n| json!({ "n": n.to_string(), "kind": if n % 3 == 0 { "third" } else { "other" } })).collect();
    let ids = save_versions(&server, &versions).await;
    let id_of = |n: usize| ids[n - 1];
    let path = format!("{R}/versions");

    let first = server.get(&format!("{path}?filter=kind:third&limit=4"), Some(&token)).await;
    assert_eq!(links(&first), [format!("<{}{path}?to={}&limit=4>; rel=\"next\"", server.url, id_of(18))]);
    assert_eq!(numbers(&first.json().await.unwrap()), [30, 27, 24, 21]);

    let second = server.get(&format!("{path}?filter=kind:third&limit=4&to={}", id_of(18)), Some(&token)).await;
    assert_eq!(
        links(&second),
        [
            format!("<{}{path}?to={}&limit=4>; rel=\"next\"", server.url, id_of(6)),
            format!("<{}{path}?from={}&limit=4>; rel=\"previous\"", server.url, id_of(21)),
        ]
    );
    assert_eq!(numbers(&second.json().await.unwrap()), [18, 15, 12, 9]);

    let back = server.get(&format!("{path}?filter=kind:third&limit=4&from={}", id_of(21)), Some(&token)).await;
    assert_eq!(links(&back), [format!("<{}{path}?to={}&limit=4>; rel=\"next\"", server.url, id_of(18))]);
    assert_eq!(numbers(&back.json().await.unwrap()), [30, 27, 24, 21]);

    let last = server.get_json(&format!("{path}?filter=kind:third&limit=4&to={}", id_of(6)), Some(&token)).await;
    assert_eq!(numbers(&last), [6, 3]);
    // An id not in the history pages from the newest, as before.
    let unknown = server.get_json(&format!("{path}?limit=2&to=999999"), Some(&token)).await;
    assert_eq!(numbers(&unknown), [30, 29]);
    server.stop().await;
}

on_both_backends!(
    comments_and_wall_messages_longer_than_their_limit_are_refused,
    version_pages_are_at_most_a_thousand_long_and_streamed,
    filtered_version_pages_link_to_their_matching_neighbours,
);
