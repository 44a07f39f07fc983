//! The routes fly and the web UI use besides the everyday ones: log level,
//! credential managers, `fly sync`, old badge URLs, TSA worker routes,
//! containers, build preparation, the versions DB and causality.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

async fn text(server: &TestServer, method: Method, path: &str, token: &str, body: &str) -> (StatusCode, String) {
    let response = server.request(method, path, Some(token)).body(body.to_string()).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The log level is the process's: the two backends' runs take turns.
static LOG_LEVEL_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn the_log_level_changes_while_atc_runs(backend: Backend) {
    let _turn = LOG_LEVEL_TURN.lock().await;
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    for level in ["debug", "error", "fatal", "info"] {
        assert_eq!(text(&server, Method::PUT, "/api/v1/log-level", &admin, level).await.0, 200);
        assert_eq!(text(&server, Method::GET, "/api/v1/log-level", &admin, "").await, (StatusCode::OK, level.into()));
    }
    let (status, body) = text(&server, Method::PUT, "/api/v1/log-level", &admin, "loud").await;
    assert_eq!(status, 400);
    assert!(body.contains("'loud' is not a log level"), "{body}");
    assert_eq!(text(&server, Method::GET, "/api/v1/log-level", &admin, "").await.1, "info");
    server.stop().await;
}

async fn system_routes_say_what_atc_has(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    // The test server's dummy manager holds a var: listed, its value not.
    let creds = server.get("/api/v1/info/creds", Some(&admin)).await.text().await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(&creds).unwrap(), json!({ "dummy": { "health": { "method": "noop" } } }));
    assert!(!creds.contains("hello from creds"));
    let info = server.get_json("/api/v1/info", None).await;
    assert_eq!(info["feature_flags"]["resource_causality"], true);

    let cli = server.get("/api/v1/cli?arch=amd64&platform=linux", None).await;
    assert_eq!(cli.status(), 404);
    // As go-concourse reads a 404: JSON:API errors, whose details fly prints.
    let body = cli.json::<Value>().await.unwrap();
    assert!(body["errors"][0]["detail"].as_str().unwrap().contains("ships no fly binaries"), "{body}");

    let land = server.request(Method::PUT, "/api/v1/workers/some-worker/land", Some(&admin)).send().await.unwrap();
    assert_eq!(land.status(), 501);
    assert!(land.json::<Value>().await.unwrap()["errors"][0].as_str().unwrap().contains("TSA"));
    // fly prints a failed prune's `stderr`.
    let prune = server.request(Method::PUT, "/api/v1/workers/some-worker/prune", Some(&admin)).send().await.unwrap();
    assert_eq!(prune.status(), 400);
    assert!(prune.json::<Value>().await.unwrap()["stderr"].as_str().unwrap().contains("no stalled worker"));
    server.stop().await;
}

const BADGED: &str =
    "jobs:\n- name: unit tests\n  plan:\n  - task: t\n    config: {platform: linux, run: {path: 'true'}}\n";

async fn old_job_badge_urls_lead_to_the_main_team(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    server.set_and_unpause(&admin, "badged", BADGED).await;
    server.request(Method::PUT, "/api/v1/teams/main/pipelines/badged/expose", Some(&admin)).send().await.unwrap();
    let response = server.get("/api/v1/pipelines/badged/jobs/unit%20tests/badge?title=tests", None).await;
    assert_eq!(response.status(), 301);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, "/api/v1/teams/main/pipelines/badged/jobs/unit%20tests/badge?title=tests");
    let badge = server.get(&location, None).await;
    assert_eq!(badge.status(), 200);
    assert!(badge.text().await.unwrap().contains(">tests</text>"));
    server.stop().await;
}

const SLOW: &str = r#"
jobs:
- name: slow
  plan:
  - task: wait
    config:
      platform: linux
      run: {path: sleep, args: ["60"]}
"#;

async fn running_steps_are_listed_as_containers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    server.set_and_unpause(&admin, "slow", SLOW).await;
    assert_eq!(server.get_json("/api/v1/teams/main/containers", Some(&admin)).await, json!([]));
    let response =
        server.request(Method::POST, "/api/v1/teams/main/pipelines/slow/jobs/slow/builds", Some(&admin)).send().await;
    let build: Value = response.unwrap().json().await.unwrap();
    let build_id = build["id"].as_i64().unwrap();
    let containers = server
        .wait_for(&admin, "/api/v1/teams/main/containers", "the task to run", |c| {
            c.as_array().is_some_and(|c| !c.is_empty())
        })
        .await;
    let container = &containers[0];
    let pipeline = server.get_json("/api/v1/teams/main/pipelines/slow", Some(&admin)).await;
    let job = server.get_json("/api/v1/teams/main/pipelines/slow/jobs/slow", Some(&admin)).await;
    assert_eq!(container["type"], "task");
    assert_eq!(container["step_name"], "wait");
    assert_eq!(container["state"], "created");
    assert_eq!(container["build_id"], build_id);
    assert_eq!(container["build_name"], "1");
    assert_eq!(container["pipeline_name"], "slow");
    assert_eq!(container["pipeline_id"], pipeline["id"]);
    assert_eq!(container["job_name"], "slow");
    assert_eq!(container["job_id"], job["id"]);
    let workers = server.get_json("/api/v1/workers", Some(&admin)).await;
    assert_eq!(container["worker_name"], workers[0]["name"]);
    assert_eq!(workers[0]["active_containers"], 1);

    // `fly intercept`'s filters.
    let handle = container["id"].as_str().unwrap();
    let filtered = |query: &str| format!("/api/v1/teams/main/containers?{query}");
    let by_build = server.get_json(&filtered(&format!("build_id={build_id}&type=task")), Some(&admin)).await;
    assert_eq!(by_build.as_array().unwrap().len(), 1);
    let by_names = server.get_json(&filtered("pipeline_name=slow&job_name=slow&step_name=wait"), Some(&admin)).await;
    assert_eq!(by_names[0]["id"], handle);
    assert_eq!(server.get_json(&filtered("type=get"), Some(&admin)).await, json!([]));
    assert_eq!(server.get(&filtered("build_id=abc"), Some(&admin)).await.status(), 400);
    let one = server.get_json(&format!("/api/v1/teams/main/containers/{handle}"), Some(&admin)).await;
    assert_eq!(&one, container);
    // Another team sees none of them.
    server.set_team(&admin, "other", "owner", "admin").await;
    assert_eq!(server.get_json("/api/v1/teams/other/containers", Some(&admin)).await, json!([]));
    assert_eq!(server.get(&format!("/api/v1/teams/other/containers/{handle}"), Some(&admin)).await.status(), 404);

    let hijack = server.get(&format!("/api/v1/teams/main/containers/{handle}/hijack"), Some(&admin)).await;
    assert_eq!(hijack.status(), 501);
    assert!(hijack.json::<Value>().await.unwrap()["errors"][0].as_str().unwrap().contains("exec"));

    server.request(Method::PUT, &format!("/api/v1/builds/{build_id}/abort"), Some(&admin)).send().await.unwrap();
    server.wait_for(&admin, "/api/v1/teams/main/containers", "the aborted step to stop", |c| c == &json!([])).await;
    server.stop().await;
}

const WAITING: &str = r#"
resources:
- name: repo
  type: mock
  source: {no_initial_version: true}
jobs:
- name: waiting
  plan:
  - get: repo
"#;

async fn a_pending_build_says_what_it_waits_for(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    assert!(server.set_pipeline(&admin, "main", "waiting", WAITING).await.status().is_success());
    let response =
        server.request(Method::POST, "/api/v1/teams/main/pipelines/waiting/jobs/waiting/builds", Some(&admin)).send();
    let build: Value = response.await.unwrap().json().await.unwrap();
    let preparation = format!("/api/v1/builds/{}/preparation", build["id"]);
    assert_eq!(
        server.get_json(&preparation, Some(&admin)).await,
        json!({
            "build_id": build["id"],
            "paused_pipeline": "blocking",
            "paused_job": "not_blocking",
            "max_running_builds": "not_blocking",
            "inputs": { "repo": "blocking" },
            "inputs_satisfied": "blocking",
            "missing_input_reasons": { "repo": "input is not included in resolved candidates" },
        })
    );
    // Running, the scheduler finds the resource has no versions.
    let unpause = server.request(Method::PUT, "/api/v1/teams/main/pipelines/waiting/unpause", Some(&admin));
    assert_eq!(unpause.send().await.unwrap().status(), 200);
    let prepared = server
        .wait_for(&admin, &preparation, "the scheduler to try the inputs", |p| {
            p["paused_pipeline"] == "not_blocking" && p["missing_input_reasons"]["repo"] == "no versions available"
        })
        .await;
    assert_eq!(prepared["inputs_satisfied"], "blocking");

    server.request(Method::PUT, &format!("/api/v1/builds/{}/abort", build["id"]), Some(&admin)).send().await.unwrap();
    let finished = server.get_json(&preparation, Some(&admin)).await;
    assert_eq!(finished["inputs"], json!({}));
    assert_eq!(finished["paused_pipeline"], "not_blocking");
    assert_eq!(finished["inputs_satisfied"], "not_blocking");
    server.stop().await;
}

const FLOW: &str = r#"
resources:
- name: source
  type: mock
  source: {initial_version: v1}
- name: artifact
  type: mock
  source: {no_initial_version: true}
jobs:
- name: make
  plan:
  - get: source
    trigger: true
  - put: artifact
    params: {version: built-from-v1}
- name: ship
  plan:
  - get: artifact
    passed: [make]
    trigger: true
"#;

fn ids_of(list: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = list.as_array().unwrap().iter().map(|item| item["id"].as_i64().unwrap()).collect();
    ids.sort();
    ids
}

async fn versions_flow_downstream_and_upstream(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    server.set_and_unpause(&admin, "flow", FLOW).await;
    let ship = server
        .wait_for(&admin, "/api/v1/teams/main/pipelines/flow/jobs/ship/builds", "ship to run", |b| {
            b.as_array().is_some_and(|b| b.iter().any(|b| b["status"] == "succeeded"))
        })
        .await;
    let make = server.get_json("/api/v1/teams/main/pipelines/flow/jobs/make/builds", Some(&admin)).await;
    let (make_build, ship_build) = (make[0]["id"].as_i64().unwrap(), ship[0]["id"].as_i64().unwrap());
    let version_of = |resource: &'static str| {
        let server = &server;
        let admin = &admin;
        async move {
            let path = format!("/api/v1/teams/main/pipelines/flow/resources/{resource}/versions");
            server.get_json(&path, Some(admin)).await[0]["id"].as_i64().unwrap()
        }
    };
    let (source, artifact) = (version_of("source").await, version_of("artifact").await);

    let base = "/api/v1/teams/main/pipelines/flow/resources";
    let down = server.get_json(&format!("{base}/source/versions/{source}/downstream"), Some(&admin)).await;
    assert_eq!(ids_of(&down["builds"]), [make_build, ship_build]);
    assert_eq!(down["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(ids_of(&down["resource_versions"]), {
        let mut ids = [source, artifact];
        ids.sort();
        ids
    });
    let made = down["builds"].as_array().unwrap().iter().find(|b| b["id"] == make_build).unwrap();
    assert_eq!(made["resource_version_ids"], json!([artifact]), "make put the artifact");
    let used = down["resource_versions"].as_array().unwrap().iter().find(|v| v["id"] == source).unwrap();
    assert_eq!(used["build_ids"], json!([make_build]));
    assert_eq!(used["version"], json!({ "version": "v1" }));

    let up = server.get_json(&format!("{base}/artifact/versions/{artifact}/upstream"), Some(&admin)).await;
    assert_eq!(ids_of(&up["builds"]), [make_build]);
    assert_eq!(up["builds"][0]["resource_version_ids"], json!([source]), "make used the source");
    assert_eq!((&up["jobs"][0]["name"], &up["jobs"][0]["build_ids"]), (&json!("make"), &json!([make_build])));
    let names: Vec<&str> = up["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{up}");
    assert_eq!(server.get(&format!("{base}/source/versions/999999/downstream"), Some(&admin)).await.status(), 404);

    // The scheduler's whole view.
    let vdb = server.get_json("/api/v1/teams/main/pipelines/flow/versions-db", Some(&admin)).await;
    let job_names: Vec<&str> = vdb["Jobs"].as_array().unwrap().iter().map(|j| j["Name"].as_str().unwrap()).collect();
    assert_eq!(job_names, ["make", "ship"]);
    assert_eq!(vdb["Resources"].as_array().unwrap().len(), 2);
    assert_eq!(vdb["ResourceVersions"].as_array().unwrap().len(), 2);
    let input = vdb["BuildInputs"].as_array().unwrap().iter().find(|i| i["BuildID"] == make_build).unwrap();
    assert_eq!((&input["InputName"], &input["VersionID"]), (&json!("source"), &json!(source)));
    let outputs: Vec<(i64, i64)> = vdb["BuildOutputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["BuildID"].as_i64().unwrap(), o["VersionID"].as_i64().unwrap()))
        .collect();
    for expected in [(make_build, artifact), (make_build, source), (ship_build, artifact)] {
        assert!(outputs.contains(&expected), "{expected:?} among {outputs:?}");
    }
    assert_eq!(vdb["BuildReruns"], json!([]));
    server.stop().await;
}

on_both_backends!(
    the_log_level_changes_while_atc_runs,
    system_routes_say_what_atc_has,
    old_job_badge_urls_lead_to_the_main_team,
    running_steps_are_listed_as_containers,
    a_pending_build_says_what_it_waits_for,
    versions_flow_downstream_and_upstream,
);
