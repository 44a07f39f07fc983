//! The web UI's pages over HTTP, as a browser without scripts gets them:
//! what each role is offered, where a visitor without access is sent, and
//! 404 pages. (tests/web drives the same pages in Chromium.)

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

const PIPELINE: &str = r#"
resources:
- name: repo
  type: mock
  check_every: never
  source: {initial_version: v1}
jobs:
- name: unit
  plan:
  - get: repo
"#;

async fn page(server: &TestServer, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let response = server.get(path, token).await;
    (response.status(), response.text().await.unwrap())
}

/// A viewer sees the pipeline but is offered no action; a member is
/// offered trigger and pause; neither role is offered what it may not do.
async fn pages_offer_only_what_the_role_may_do(backend: Backend) {
    let server = TestServer::start_with_users(backend, &[("watcher", "pw"), ("dev", "pw")]).await;
    let admin = server.admin_token().await;
    let body = serde_json::json!({ "auth": {
        "viewer": { "users": ["local:watcher"], "groups": [] },
        "member": { "users": ["local:dev"], "groups": [] },
    } });
    assert!(server.put_json("/api/v1/teams/team", Some(&admin), &body).await.status().is_success());
    server.set_pipeline(&admin, "team", "p", PIPELINE).await;
    let job = "/teams/team/pipelines/p/jobs/unit";

    let watcher = server.login("watcher", "pw").await;
    let (status, html) = page(&server, job, Some(&watcher)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>unit"), "{html}");
    assert!(!html.contains("id=\"trigger\"") && !html.contains("/pause\""), "a viewer gets no actions:\n{html}");
    let (_, dashboard) = page(&server, "/", Some(&watcher)).await;
    assert!(dashboard.contains("data-name=\"p\"") && !dashboard.contains("aria-label=\"Unpause p\""));

    let dev = server.login("dev", "pw").await;
    let (_, html) = page(&server, job, Some(&dev)).await;
    assert!(html.contains("id=\"trigger\""), "{html}");
    assert!(html.contains("data-put=\"/api/v1/teams/team/pipelines/p/jobs/unit/pause\""));
    let (_, dashboard) = page(&server, "/", Some(&dev)).await;
    assert!(
        dashboard.contains("aria-label=\"Unpause p\"") && dashboard.contains("aria-label=\"Expose p\""),
        "new pipelines start paused"
    );
    server.stop().await;
}

/// A visitor without access is sent to the login, coming back to the page;
/// unknown names and paths get an HTML 404, API paths a JSON one.
async fn visitors_are_sent_to_the_login_and_unknown_names_get_a_404_page(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    server.set_pipeline(&admin, "main", "p", PIPELINE).await;

    let response = server.get("/teams/main/pipelines/p/jobs/unit", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, "/sky/login?redirect_uri=%2Fteams%2Fmain%2Fpipelines%2Fp%2Fjobs%2Funit");

    for path in ["/teams/main/pipelines/nope", "/teams/main/pipelines/p/jobs/nope", "/builds/999", "/builds/x", "/nope"]
    {
        let response = server.get(path, Some(&admin)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
    }
    let response = server.get("/api/v1/nope", Some(&admin)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));

    // The public view: an exposed pipeline's page, without actions.
    server.request(reqwest::Method::PUT, "/api/v1/teams/main/pipelines/p/expose", Some(&admin)).send().await.unwrap();
    let (status, html) = page(&server, "/teams/main/pipelines/p", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("aria-label=\"job unit, pending\"") && !html.contains("data-put"), "{html}");
    assert!(html.contains("id=\"login\""), "a log-in link instead of the user menu");
    server.stop().await;
}

/// What users write (a build's comment) reaches the page escaped.
async fn user_text_is_escaped(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    server.set_and_unpause(&admin, "p", PIPELINE).await;
    let (id, _) = server.trigger_and_watch(&admin, "p", "unit").await;
    let comment = serde_json::json!({ "comment": "<script>alert(1)</script> & more" });
    let response = server.put_json(&format!("/api/v1/builds/{id}/comment"), Some(&admin), &comment).await;
    assert!(response.status().is_success());
    let (_, html) = page(&server, &format!("/builds/{id}"), Some(&admin)).await;
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"), "{html}");
    assert!(!html.contains("<script>alert"));
    server.stop().await;
}

on_both_backends!(
    pages_offer_only_what_the_role_may_do,
    visitors_are_sent_to_the_login_and_unknown_names_get_a_404_page,
    user_text_is_escaped
);
