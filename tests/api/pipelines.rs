//! Pipelines, their configuration, jobs and resources over the API.

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

const PIPELINE: &str = r#"
resources:
- name: repo
  type: mock
  source: {initial_version: v1}
  icon: github
- name: image
  type: mock
  version: {version: pinned}
resource_types:
- name: custom
  type: mock
  source: {mirror_self: true}
jobs:
- name: build
  public: true
  plan:
  - get: repo
    trigger: true
  - put: image
- name: deploy
  plan:
  - get: repo
    passed: [build]
  - get: image
groups:
- name: all
  jobs: ["*"]
- name: ship
  jobs: [deploy]
"#;

async fn set_pipeline_then_get_it_back(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let path = "/api/v1/teams/main/pipelines/demo/config";

    let created = server.set_pipeline(&token, "main", "demo", PIPELINE).await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["x-concourse-version"], atc::api::CONCOURSE_VERSION);
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["warnings"], json!([]));

    let got = server.get(path, Some(&token)).await;
    assert_eq!(got.headers()["x-concourse-config-version"], "1");
    let config: Value = got.json().await.unwrap();
    assert_eq!(config["config"]["jobs"][0]["name"], "build");
    assert_eq!(config["config"]["jobs"][0]["plan"][0]["get"], "repo");
    assert_eq!(config["config"]["resources"][1]["version"]["version"], "pinned");

    // JSON bodies work too, and the returned config sets the same pipeline.
    let resend = server
        .request(Method::PUT, path, Some(&token))
        .header("Content-Type", "application/json")
        .header("X-Concourse-Config-Version", "1")
        .body(config["config"].to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resend.status(), 200);
    let again: Value = server.get(path, Some(&token)).await.json().await.unwrap();
    assert_eq!(again["config"], config["config"], "config round-trips unchanged");

    let pipeline = server.get_json("/api/v1/teams/main/pipelines/demo", Some(&token)).await;
    assert_eq!(pipeline["paused"], true);
    assert_eq!(pipeline["groups"][1]["name"], "ship");
    server.stop().await;
}

async fn stale_config_version_is_a_conflict(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    assert_eq!(server.set_pipeline(&token, "main", "demo", PIPELINE).await.status(), 201);
    let put = |version: &'static str| {
        server
            .request(Method::PUT, "/api/v1/teams/main/pipelines/demo/config", Some(&token))
            .header("Content-Type", "application/x-yaml")
            .header("X-Concourse-Config-Version", version)
            .body(PIPELINE)
            .send()
    };
    assert_eq!(put("1").await.unwrap().status(), 200);
    let stale = put("1").await.unwrap();
    assert_eq!(stale.status(), 409);
    let malformed = put("one").await.unwrap();
    assert_eq!(malformed.status(), 400);
    server.stop().await;
}

async fn bad_configs_are_400s_that_say_why(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let errors = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        body["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect::<Vec<_>>()
    };

    let malformed = errors(server.set_pipeline(&token, "main", "p", "jobs:\n- name: a\n  plan: [\n").await).await;
    assert!(malformed[0].contains("line") && malformed[0].contains("column"), "{malformed:?}");

    let unknown =
        errors(server.set_pipeline(&token, "main", "p", "jobs:\n- name: a\n  plan: []\n  bogus: 1\n").await).await;
    assert!(unknown.iter().any(|e| e.contains("bogus")), "{unknown:?}");

    let invalid = "jobs:\n- name: a\n  plan:\n  - get: nowhere\n- name: a\n  plan: []\n";
    let invalid = errors(server.set_pipeline(&token, "main", "p", invalid).await).await.join("\n");
    assert!(invalid.contains("nowhere"), "{invalid}");
    assert!(invalid.contains("same name") || invalid.contains("duplicate"), "{invalid}");

    let not_yaml = server
        .request(Method::PUT, "/api/v1/teams/main/pipelines/p/config", Some(&token))
        .header("Content-Type", "text/plain")
        .body(PIPELINE)
        .send()
        .await
        .unwrap();
    assert_eq!(not_yaml.status(), 415);

    let huge = "#".repeat(11 * 1024 * 1024);
    let too_large = server.set_pipeline(&token, "main", "p", &huge).await;
    assert_eq!(too_large.status(), 413);

    let bad_name = server.set_pipeline(&token, "main", "bad%01name", PIPELINE).await;
    assert_eq!(bad_name.status(), 400);
    // None of that saved anything.
    assert_eq!(server.get_json("/api/v1/teams/main/pipelines", Some(&token)).await, json!([]));
    server.stop().await;
}

/// The fixtures `atc validate-pipeline` is tested with: the server says
/// the same thing about each.
async fn the_server_checks_what_validate_pipeline_checks(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let fixtures = crate::support::source_root().join("tests/fixtures/pipelines");
    for (dir, refused) in [("invalid", true), ("warnings", false)] {
        for entry in std::fs::read_dir(fixtures.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let yaml = std::fs::read_to_string(&path).unwrap();
            let expected = yaml.lines().next().unwrap().split_once(": ").unwrap().1.to_string();
            let response = server.set_pipeline(&token, "main", "fixture", &yaml).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert_eq!(status, if refused { 400 } else { 201 }, "{}: {body}", path.display());
            let said: Vec<&str> = if refused {
                body["errors"].as_array().unwrap().iter().filter_map(Value::as_str).collect()
            } else {
                body["warnings"].as_array().unwrap().iter().filter_map(|w| w["message"].as_str()).collect()
            };
            assert!(said.join("\n").contains(&expected), "{}: {body}", path.display());
            if !refused {
                let deleted = server.request(Method::DELETE, "/api/v1/teams/main/pipelines/fixture", Some(&token));
                assert_eq!(deleted.send().await.unwrap().status(), 204);
            }
        }
    }
    server.stop().await;
}

async fn jobs_and_resources_are_listed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    server.set_pipeline(&token, "main", "demo", PIPELINE).await;
    let p = "/api/v1/teams/main/pipelines/demo";

    let jobs = server.get_json(&format!("{p}/jobs"), Some(&token)).await;
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    let deploy = server.get_json(&format!("{p}/jobs/deploy"), Some(&token)).await;
    assert_eq!(deploy["pipeline_name"], "demo");
    assert_eq!(deploy["groups"], json!(["all", "ship"]));
    assert_eq!(
        deploy["inputs"],
        json!([
            {"name": "repo", "resource": "repo", "trigger": false, "passed": ["build"]},
            {"name": "image", "resource": "image", "trigger": false},
        ])
    );
    let build = server.get_json(&format!("{p}/jobs/build"), Some(&token)).await;
    assert_eq!(build["outputs"], json!([{"name": "image", "resource": "image"}]));
    assert_eq!(build["inputs"][0]["trigger"], true);

    assert_eq!(
        server.request(Method::PUT, &format!("{p}/jobs/deploy/pause"), Some(&token)).send().await.unwrap().status(),
        200
    );
    let paused = server.get_json(&format!("{p}/jobs/deploy"), Some(&token)).await;
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["paused_by"], "admin");
    server.request(Method::PUT, &format!("{p}/jobs/deploy/unpause"), Some(&token)).send().await.unwrap();
    assert!(server.get_json(&format!("{p}/jobs/deploy"), Some(&token)).await.get("paused").is_none());
    assert_eq!(server.get(&format!("{p}/jobs/missing"), Some(&token)).await.status(), 404);

    let resources = server.get_json(&format!("{p}/resources"), Some(&token)).await;
    assert_eq!(resources[0]["name"], "repo");
    assert_eq!(resources[0]["icon"], "github");
    assert_eq!(resources[1]["pinned_version"], json!({"version": "pinned"}));
    assert_eq!(resources[1]["pinned_in_config"], true);
    let repo = server.get_json(&format!("{p}/resources/repo"), Some(&token)).await;
    assert_eq!(repo["type"], "mock");
    let types = server.get_json(&format!("{p}/resource-types"), Some(&token)).await;
    assert_eq!(types[0]["name"], "custom");
    assert_eq!(server.get_json("/api/v1/jobs", Some(&token)).await.as_array().unwrap().len(), 2);
    assert_eq!(server.get_json("/api/v1/resources", Some(&token)).await.as_array().unwrap().len(), 2);
    server.stop().await;
}

async fn pipeline_lifecycle(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    for name in ["one", "two", "three"] {
        assert_eq!(server.set_pipeline(&token, "main", name, PIPELINE).await.status(), 201);
    }
    let names = |list: Value| {
        list.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let put = |path: String| server.request(Method::PUT, &path, Some(&token)).send();
    let p = |name: &str, action: &str| format!("/api/v1/teams/main/pipelines/{name}/{action}");

    assert_eq!(put(p("one", "unpause")).await.unwrap().status(), 200);
    assert_eq!(server.get_json("/api/v1/teams/main/pipelines/one", Some(&token)).await["paused"], false);
    assert_eq!(put(p("one", "pause")).await.unwrap().status(), 200);
    assert_eq!(server.get_json("/api/v1/teams/main/pipelines/one", Some(&token)).await["paused_by"], "admin");

    // Exposed pipelines can be read without logging in; hidden ones cannot.
    assert_eq!(server.get("/api/v1/teams/main/pipelines/two", None).await.status(), 401);
    put(p("two", "expose")).await.unwrap();
    assert_eq!(server.get("/api/v1/teams/main/pipelines/two", None).await.status(), 200);
    assert_eq!(server.get("/api/v1/teams/main/pipelines/two/jobs", None).await.status(), 200);
    assert_eq!(names(server.get_json("/api/v1/teams/main/pipelines", None).await), ["two"]);
    assert_eq!(server.get("/api/v1/teams/main/pipelines/two/config", None).await.status(), 401);
    put(p("two", "hide")).await.unwrap();
    assert_eq!(server.get("/api/v1/teams/main/pipelines/two", None).await.status(), 401);

    let rename = server.put_json(&p("three", "rename"), Some(&token), &json!({"name": "drei"})).await;
    assert_eq!(rename.status(), 200);
    let clash = server.put_json(&p("drei", "rename"), Some(&token), &json!({"name": "one"})).await;
    assert_eq!(clash.status(), 409);

    let order = server.put_json("/api/v1/teams/main/pipelines/ordering", Some(&token), &json!(["drei", "one"])).await;
    assert_eq!(order.status(), 200);
    assert_eq!(names(server.get_json("/api/v1/teams/main/pipelines", Some(&token)).await), ["drei", "one", "two"]);
    let unknown = server.put_json("/api/v1/teams/main/pipelines/ordering", Some(&token), &json!(["nope"])).await;
    assert_eq!(unknown.status(), 400);

    assert_eq!(put(p("one", "archive")).await.unwrap().status(), 200);
    let archived = server.get_json("/api/v1/teams/main/pipelines/one", Some(&token)).await;
    assert_eq!((archived["archived"].clone(), archived["paused"].clone()), (json!(true), json!(true)));
    assert_eq!(server.get_json(&p("one", "jobs"), Some(&token)).await, json!([]));
    assert_eq!(put(p("one", "unpause")).await.unwrap().status(), 409);
    // Setting it again restores it.
    assert_eq!(server.set_pipeline(&token, "main", "one", PIPELINE).await.status(), 200);
    assert_eq!(server.get_json("/api/v1/teams/main/pipelines/one", Some(&token)).await["archived"], false);

    let deleted =
        server.request(Method::DELETE, "/api/v1/teams/main/pipelines/drei", Some(&token)).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(server.get("/api/v1/teams/main/pipelines/drei", Some(&token)).await.status(), 404);
    assert_eq!(names(server.get_json("/api/v1/pipelines", Some(&token)).await), ["one", "two"]);
    server.stop().await;
}

async fn instance_vars_name_separate_pipelines(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    for branch in ["main", "dev"] {
        let response = server
            .request(
                Method::PUT,
                &format!("/api/v1/teams/main/pipelines/ci/config?vars.branch=%22{branch}%22"),
                Some(&token),
            )
            .header("Content-Type", "application/x-yaml")
            .body(PIPELINE)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let dev =
        server.get_json("/api/v1/teams/main/pipelines/ci?vars=%7B%22branch%22%3A%22dev%22%7D", Some(&token)).await;
    assert_eq!(dev["instance_vars"], json!({"branch": "dev"}));
    assert_eq!(server.get("/api/v1/teams/main/pipelines/ci", Some(&token)).await.status(), 404);
    assert_eq!(server.get("/api/v1/teams/main/pipelines/ci?vars=%7Bbad", Some(&token)).await.status(), 400);
    server.stop().await;
}

async fn build_lists_paginate_with_link_headers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let team = server.test_db.db.find_team("main").await.unwrap().unwrap();
    for n in 1..=3 {
        server
            .test_db
            .db
            .create_build(&atc::db::NewBuild { team_id: team.id, name: n.to_string(), ..Default::default() })
            .await
            .unwrap();
    }
    let first = server.get("/api/v1/builds?limit=2", Some(&token)).await;
    let links: Vec<String> = first.headers().get_all("link").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert_eq!(links, [format!("<{}/api/v1/builds?to=1&limit=2>; rel=\"next\"", server.url)]);
    let builds: Value = first.json().await.unwrap();
    assert_eq!(
        builds.as_array().unwrap().iter().map(|b| b["name"].clone()).collect::<Vec<_>>(),
        [json!("3"), json!("2")]
    );
    assert_eq!(builds[0]["api_url"], "/api/v1/builds/3");

    let second = server.get("/api/v1/builds?to=1&limit=2", Some(&token)).await;
    let links: Vec<String> = second.headers().get_all("link").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert_eq!(links, [format!("<{}/api/v1/builds?from=2&limit=2>; rel=\"previous\"", server.url)]);
    assert_eq!(server.get("/api/v1/builds?limit=lots", Some(&token)).await.status(), 400);
    assert_eq!(server.get_json("/api/v1/teams/main/builds", Some(&token)).await.as_array().unwrap().len(), 3);
    // Nobody else sees builds of the main team.
    assert_eq!(server.get_json("/api/v1/builds", None).await, json!([]));
    server.stop().await;
}

async fn info_and_health_answer_without_login(backend: Backend) {
    let server = TestServer::start(backend).await;
    let info = server.get_json("/api/v1/info", None).await;
    assert_eq!(info["version"], atc::api::CONCOURSE_VERSION);
    assert_eq!(info["cluster_name"], "test");
    assert_eq!(info["external_url"], server.url.as_str());
    let health = server.get_json("/api/v1/health", None).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"]["status"], "healthy");
    let unknown = server.get("/api/v1/nope", None).await;
    assert_eq!(unknown.status(), 404);
    assert!(unknown.headers().contains_key("x-concourse-version"));
    server.stop().await;
}

on_both_backends!(
    set_pipeline_then_get_it_back,
    stale_config_version_is_a_conflict,
    bad_configs_are_400s_that_say_why,
    the_server_checks_what_validate_pipeline_checks,
    jobs_and_resources_are_listed,
    pipeline_lifecycle,
    instance_vars_name_separate_pipelines,
    build_lists_paginate_with_link_headers,
    info_and_health_answer_without_login,
);

async fn job_status_shows_in_summaries_badges_and_cctray(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let set = server.set_pipeline(&token, "main", "demo", PIPELINE).await;
    assert_eq!(set.status(), 201, "{}", set.text().await.unwrap());
    let db = &server.test_db.db;
    let team = db.find_team("main").await.unwrap().unwrap();
    let pipeline = db.find_pipeline("main", &atc::db::PipelineRef::named("demo")).await.unwrap().unwrap();
    let job = db.find_job(pipeline.id, "build").await.unwrap().unwrap();
    let mut ids = Vec::new();
    for status in [
        Some(atc::db::BuildStatus::Succeeded),
        Some(atc::db::BuildStatus::Failed),
        Some(atc::db::BuildStatus::Failed),
        None,
    ] {
        let number = db.next_build_number(job.id).await.unwrap();
        let id = db
            .create_build(&atc::db::NewBuild {
                team_id: team.id,
                pipeline_id: Some(pipeline.id),
                job_id: Some(job.id),
                name: number.to_string(),
                ..Default::default()
            })
            .await
            .unwrap();
        if let Some(status) = status {
            assert!(db.end_unstarted_build(id, status, &[]).await.unwrap());
        }
        ids.push(id);
    }
    let p = "/api/v1/teams/main/pipelines/demo";
    let summary = server.get_json(&format!("{p}/jobs/build"), Some(&token)).await;
    assert_eq!(summary["finished_build"]["id"], ids[2]);
    assert_eq!(summary["finished_build"]["status"], "failed");
    assert_eq!(summary["transition_build"]["id"], ids[1], "the build where it went from passing to failing");
    assert_eq!(summary["next_build"]["id"], ids[3]);
    assert_eq!(server.get_json(&format!("{p}/jobs/build/builds/2"), Some(&token)).await["id"], ids[1]);
    assert_eq!(server.get(&format!("{p}/jobs/build/builds/99"), Some(&token)).await.status(), 404);

    let badge = server.get(&format!("{p}/jobs/build/badge?title=ci"), Some(&token)).await;
    assert_eq!(badge.headers()["content-type"], "image/svg+xml");
    let svg = badge.text().await.unwrap();
    assert!(svg.contains(">failing<") && svg.contains(">ci<"), "{svg}");
    let pipeline_badge = server.get(&format!("{p}/badge"), Some(&token)).await.text().await.unwrap();
    assert!(pipeline_badge.contains(">failing<"), "the worst job decides: {pipeline_badge}");

    let cc = server.get("/api/v1/teams/main/cc.xml", Some(&token)).await.text().await.unwrap();
    assert!(
        cc.starts_with("<Projects><Project activity=\"Building\" lastBuildLabel=\"3\" lastBuildStatus=\"Failure\""),
        "{cc}"
    );
    assert!(cc.contains("name=\"demo/build\""), "{cc}");
    // Without login only public pipelines appear.
    assert_eq!(server.get("/api/v1/teams/main/cc.xml", None).await.text().await.unwrap(), "<Projects></Projects>");
    server.stop().await;
}

on_both_backends!(job_status_shows_in_summaries_badges_and_cctray);
