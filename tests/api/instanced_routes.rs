//! Instanced pipelines: every route naming a pipeline finds an instance by
//! the instance vars `fly -p name/key:value` sends (`?vars.key="value"`),
//! and the instance it names is the one it acts on.

use reqwest::Method;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

const PIPELINE: &str = "resource_types:\n- name: rt\n  type: mock\nresources:\n- name: r\n  type: mock\njobs:\n- name: j\n  plan:\n  - get: r\n";

/// `vars.branch="main"`, as go-concourse encodes it.
const MAIN: &str = "vars.branch=%22main%22";
const DEV: &str = "vars.branch=%22dev%22";

/// A version of `r` and a finished build of `j` in the `main` instance.
async fn history(server: &TestServer) -> i64 {
    let db = &server.test_db.db;
    let reference = atc::db::PipelineRef { name: "p".into(), instance_vars: r#"{"branch":"main"}"#.into() };
    let pipeline = db.find_pipeline("main", &reference).await.unwrap().expect("the main instance");
    let resource = db.find_resource(pipeline.id, "r").await.unwrap().unwrap();
    let owner = atc::db::VersionOwner::Resource(resource.id);
    let versions = [(json!({"v": "1"}), json!([]))];
    let version = db.save_versions(owner, &resource.config_hash, &versions, None).await.unwrap()[0];
    let job = db.find_job(pipeline.id, "j").await.unwrap().unwrap();
    let number = db.next_build_number(job.id).await.unwrap();
    let plan = r#"{"id":"1","do":[]}"#;
    let id = db
        .create_build(&atc::db::NewBuild {
            team_id: pipeline.team_id,
            pipeline_id: Some(pipeline.id),
            job_id: Some(job.id),
            name: number.to_string(),
            plan: Some(atc::db::BuildPlan::new(serde_json::from_str(plan).unwrap())),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(db.end_unstarted_build(id, atc::db::BuildStatus::Succeeded, &[]).await.unwrap());
    version
}

fn body_for(name: &str, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match name {
        "SaveConfig" => request.header("Content-Type", "application/x-yaml").body(PIPELINE),
        "CreatePipelineBuild" => request.json(&json!({ "id": "1", "do": [] })),
        "SetPinCommentOnResource" => request.json(&json!({ "pin_comment": "pinned" })),
        _ => request,
    }
}

async fn paused(server: &TestServer, token: &str, instance: &str) -> bool {
    server.get_json(&format!("/api/v1/teams/main/pipelines/p?{instance}"), Some(token)).await["paused"] == true
}

async fn every_pipeline_route_takes_instance_vars(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    for instance in [MAIN, DEV] {
        let response = server
            .request(Method::PUT, &format!("/api/v1/teams/main/pipelines/p/config?{instance}"), Some(&admin))
            .header("Content-Type", "application/x-yaml")
            .body(PIPELINE)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "set the {instance} instance");
    }
    let version = history(&server).await;

    // The routes that end the instance come last, one by one below.
    let last = ["RenamePipeline", "ArchivePipeline", "DeletePipeline"];
    let mut failures = Vec::new();
    for spec in atc::api::routes::route_specs() {
        // A group's route names every instance at once (tests/api/pipeline_ordering.rs).
        let takes_one_pipeline =
            spec.path.starts_with("/api/v1/teams/{team_name}/pipelines/{pipeline_name}") && !spec.names_group;
        if !takes_one_pipeline || last.contains(&spec.name) {
            continue;
        }
        let path = spec
            .path
            .replace("{team_name}", "main")
            .replace("{pipeline_name}", "p")
            .replace("{job_name}", "j")
            .replace("{resource_name}", "r")
            .replace("{resource_type_name}", "rt")
            .replace("{version_id}", &version.to_string())
            .replace("{build_name}", "1")
            .replace("{step_name}", "a-task")
            .replace("{prototype_name}", "a-prototype");
        // Saving a config without vars would make the pipeline the other calls must not find.
        let without = if spec.name == "SaveConfig" {
            reqwest::StatusCode::NOT_FOUND
        } else {
            body_for(spec.name, server.request(spec.method.clone(), &path, Some(&admin))).send().await.unwrap().status()
        };
        let request = server.request(spec.method.clone(), &format!("{path}?{MAIN}"), Some(&admin));
        let response = body_for(spec.name, request).send().await.unwrap();
        let with = response.status();
        let found = match spec.name {
            // Without a token a webhook is refused once its pipeline is found.
            "CheckResourceWebHook" => with == 400,
            // The instance is found, but has no prototypes.
            "CheckPrototype" => with == 404 && response.text().await.unwrap().contains("has no prototype named"),
            _ => with.is_success(),
        };
        if !found || without != 404 {
            failures.push(format!("{} {}: {with} with vars, {without} without", spec.method, spec.path));
        }
    }
    assert!(failures.is_empty(), "routes not taking instance vars:\n{}", failures.join("\n"));

    // The vars name the instance acted on.
    let pause = server.request(Method::PUT, &format!("/api/v1/teams/main/pipelines/p/pause?{DEV}"), Some(&admin));
    assert_eq!(pause.send().await.unwrap().status(), 200);
    assert!(paused(&server, &admin, DEV).await);
    let unpause = server.request(Method::PUT, &format!("/api/v1/teams/main/pipelines/p/unpause?{MAIN}"), Some(&admin));
    assert_eq!(unpause.send().await.unwrap().status(), 200);
    assert!(!paused(&server, &admin, MAIN).await && paused(&server, &admin, DEV).await);

    // Renaming names the group: every instance goes with it.
    let rename = server
        .request(Method::PUT, &format!("/api/v1/teams/main/pipelines/p/rename?{MAIN}"), Some(&admin))
        .json(&json!({ "name": "q" }));
    assert_eq!(rename.send().await.unwrap().status(), 200);
    let archive = server.request(Method::PUT, &format!("/api/v1/teams/main/pipelines/q/archive?{MAIN}"), Some(&admin));
    assert_eq!(archive.send().await.unwrap().status(), 200);
    let delete = server.request(Method::DELETE, &format!("/api/v1/teams/main/pipelines/q?{MAIN}"), Some(&admin));
    assert_eq!(delete.send().await.unwrap().status(), 204);
    assert_eq!(server.get(&format!("/api/v1/teams/main/pipelines/q?{MAIN}"), Some(&admin)).await.status(), 404);
    assert_eq!(server.get(&format!("/api/v1/teams/main/pipelines/q?{DEV}"), Some(&admin)).await.status(), 200);
    assert_eq!(server.get(&format!("/api/v1/teams/main/pipelines/p?{DEV}"), Some(&admin)).await.status(), 404);
    server.stop().await;
}

/// `fly rename-pipeline -o GROUP -n NEW` sends the group's name alone: every
/// instance is renamed, a name the team uses already is refused (two groups
/// would merge), and an unknown name is a 404.
async fn renaming_an_instance_group_renames_every_instance(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    for instance in [MAIN, DEV] {
        let path = format!("/api/v1/teams/main/pipelines/p/config?{instance}");
        let set = server.request(Method::PUT, &path, Some(&admin)).header("Content-Type", "application/x-yaml");
        assert_eq!(set.body(PIPELINE).send().await.unwrap().status(), 201);
    }
    assert_eq!(server.set_pipeline(&admin, "main", "other", PIPELINE).await.status(), 201);
    let rename = async |from: &str, to: &str| {
        let path = format!("/api/v1/teams/main/pipelines/{from}/rename");
        server.put_json(&path, Some(&admin), &json!({ "name": to })).await.status()
    };

    assert_eq!(rename("p", "other").await, 409);
    assert_eq!(rename("nothing", "q").await, 404);
    assert_eq!(rename("p", "q").await, 200);
    for instance in [MAIN, DEV] {
        assert_eq!(server.get(&format!("/api/v1/teams/main/pipelines/q?{instance}"), Some(&admin)).await.status(), 200);
        assert_eq!(server.get(&format!("/api/v1/teams/main/pipelines/p?{instance}"), Some(&admin)).await.status(), 404);
    }
    server.stop().await;
}

on_both_backends!(every_pipeline_route_takes_instance_vars, renaming_an_instance_group_renames_every_instance);
