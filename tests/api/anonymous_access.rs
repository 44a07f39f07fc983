//! What callers without a role on a team learn about it: a token that is no
//! good is refused everywhere, and unknown teams and pipelines answer as
//! private ones do, so their names cannot be probed.

use atc::api::routes::{Policy, RouteSpec, route_specs};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

const PIPELINE: &str = "resources:\n- name: r\n  type: mock\n  webhook_token: sesame\njobs:\n- name: j\n  public: true\n  plan:\n  - get: r\n";

/// Team `dev` (viewer `vera`) with pipeline `p`, public or not.
async fn team_with_pipeline(server: &TestServer, admin: &str, public: bool) {
    server.set_team(admin, "dev", "viewer", "vera").await;
    assert!(server.set_pipeline(admin, "dev", "p", PIPELINE).await.status().is_success());
    let visibility = if public { "expose" } else { "hide" };
    let path = format!("/api/v1/teams/dev/pipelines/p/{visibility}");
    assert_eq!(server.request(Method::PUT, &path, Some(admin)).send().await.unwrap().status(), 200);
}

/// The route's path for `team` and `pipeline`, its other parameters filled in.
fn concrete(spec: &RouteSpec, team: &str, pipeline: &str) -> String {
    spec.path
        .replace("{team_name}", team)
        .replace("{pipeline_name}", pipeline)
        .replace("{job_name}", "j")
        .replace("{resource_name}", "r")
        .replace("{resource_type_name}", "rt")
        .replace("{version_id}", "1")
        .replace("{build_name}", "1")
}

/// Read routes of a pipeline that a public pipeline opens to anyone.
fn pipeline_reads() -> Vec<RouteSpec> {
    route_specs().into_iter().filter(|spec| spec.policy == Policy::PipelineRead).collect()
}

async fn answer(server: &TestServer, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let response = server.get(path, token).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn a_garbage_or_expired_token_is_refused_even_where_no_login_is_needed(backend: Backend) {
    let server = TestServer::start_with_users(backend, &[("brief", "pw"), ("vera", "pw")]).await;
    let admin = server.admin_token().await;
    team_with_pipeline(&server, &admin, true).await;
    // A token that was valid and expired a second ago, as the token service stores them.
    let expired = "an-expired-token".to_string();
    let record = atc::db::AccessToken {
        username: "brief".into(),
        connector: "local".into(),
        sub: "brief".into(),
        csrf_token: "csrf".into(),
        expires_at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 - 1,
    };
    server.test_db.db.save_access_token(&atc::auth::hash_token(&expired), &record).await.unwrap();
    assert_eq!(server.get("/api/v1/user", Some(&expired)).await.status(), 401);

    let mut public_paths: Vec<String> = pipeline_reads().iter().map(|spec| concrete(spec, "dev", "p")).collect();
    public_paths.extend(["/api/v1/info", "/api/v1/teams/dev/pipelines", "/api/v1/pipelines"].map(String::from));
    for path in &public_paths {
        let (status, _) = answer(&server, path, None).await;
        assert_ne!(status, 401, "{path} of a public pipeline without a token");
        for (what, token) in [("a garbage token", "garbage"), ("an expired token", expired.as_str())] {
            let (status, body) = answer(&server, path, Some(token)).await;
            assert_eq!(status, 401, "{path} with {what}");
            assert_eq!(body, json!({ "errors": ["not authorized"] }), "{path} with {what}");
        }
    }
    server.stop().await;
}

async fn unknown_teams_and_pipelines_answer_as_private_ones_to_outsiders(backend: Backend) {
    let server = TestServer::start_with_users(backend, &[("vera", "pw"), ("otto", "pw")]).await;
    let admin = server.admin_token().await;
    team_with_pipeline(&server, &admin, false).await;
    server.set_team(&admin, "other", "owner", "otto").await;
    let vera = server.login("vera", "pw").await;
    let otto = server.login("otto", "pw").await;

    for spec in pipeline_reads() {
        for (caller, token, refusal) in
            [("anonymous", None, StatusCode::UNAUTHORIZED), ("an outsider", Some(otto.as_str()), StatusCode::FORBIDDEN)]
        {
            let private = answer(&server, &concrete(&spec, "dev", "p"), token).await;
            assert_eq!(private.0, refusal, "{} of a private pipeline as {caller}", spec.name);
            for (team, pipeline) in [("dev", "nope"), ("ghost", "p")] {
                let unknown = answer(&server, &concrete(&spec, team, pipeline), token).await;
                assert_eq!(unknown, private, "{} of {team}/{pipeline} as {caller}", spec.name);
            }
        }
        // Who may read the team learns what does not exist.
        let (status, _) = answer(&server, &concrete(&spec, "dev", "nope"), Some(&vera)).await;
        assert_eq!(status, 404, "{} of a missing pipeline as a viewer", spec.name);
        let (status, _) = answer(&server, &concrete(&spec, "ghost", "p"), Some(&admin)).await;
        assert_eq!(status, 404, "{} of a missing team as an admin", spec.name);
    }

    // Public lists of a team: an unknown team has as little in it as a private one.
    for path in ["/api/v1/teams/{team}/pipelines", "/api/v1/teams/{team}/cc.xml"] {
        let of = |team: &str| path.replace("{team}", team);
        let existing = server.get(&of("dev"), None).await;
        assert_eq!(existing.status(), 200, "{path}");
        let existing = existing.text().await.unwrap();
        let unknown = server.get(&of("ghost"), None).await;
        assert_eq!(unknown.status(), 200, "{path}");
        assert_eq!(unknown.text().await.unwrap(), existing, "{path}");
    }
    assert_eq!(server.get_json("/api/v1/teams/ghost/pipelines", None).await, json!([]));

    // The webhook's token is its credential: without it nothing is found.
    let webhook = |team: &str, pipeline: &str, resource: &str, token: &str| {
        let path = format!(
            "/api/v1/teams/{team}/pipelines/{pipeline}/resources/{resource}/check/webhook?webhook_token={token}"
        );
        server.request(Method::POST, &path, None).send()
    };
    for (team, pipeline, resource) in
        [("dev", "p", "r"), ("dev", "p", "nope"), ("dev", "nope", "r"), ("ghost", "p", "r")]
    {
        let wrong = webhook(team, pipeline, resource, "guess").await.unwrap();
        assert_eq!(wrong.status(), 401, "webhook of {team}/{pipeline}/{resource} with a wrong token");
        let missing = webhook(team, pipeline, resource, "").await.unwrap();
        assert_eq!(missing.status(), 400, "webhook of {team}/{pipeline}/{resource} without a token");
    }
    assert_eq!(webhook("dev", "p", "r", "sesame").await.unwrap().status(), 201);
    server.stop().await;
}

on_both_backends!(
    a_garbage_or_expired_token_is_refused_even_where_no_login_is_needed,
    unknown_teams_and_pipelines_answer_as_private_ones_to_outsiders
);
