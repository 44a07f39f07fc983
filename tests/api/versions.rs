//! Resource versions over the API, and how checks order them.

use atc::db::{NextInput, PipelineRef, VersionOwner};
use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

const PIPELINE: &str = "resources:\n- name: r\n  type: mock\njobs:\n- name: j\n  plan:\n  - get: r\n";

async fn save(server: &TestServer, versions: &[&str]) -> Vec<i64> {
    let db = &server.test_db.db;
    let pipeline = db.find_pipeline("main", &PipelineRef::named("p")).await.unwrap().unwrap();
    let resource = db.find_resource(pipeline.id, "r").await.unwrap().unwrap();
    let batch: Vec<(Value, Value)> = versions
        .iter()
        .map(|v| (json!({ "v": v }), json!([{ "name": "note", "value": format!("about {v}") }])))
        .collect();
    db.save_versions(VersionOwner::Resource(resource.id), &resource.config_hash, &batch, None).await.unwrap()
}

fn version_names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|v| v["version"]["v"].as_str().unwrap().to_string()).collect()
}

async fn versions_list_newest_first_with_pages_and_filters(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    assert!(server.set_pipeline(&token, "main", "p", PIPELINE).await.status().is_success());
    let ids = save(&server, &["1", "2", "3", "4", "5"]).await;
    let path = "/api/v1/teams/main/pipelines/p/resources/r/versions";

    let first = server.get(&format!("{path}?limit=2"), Some(&token)).await;
    let links: Vec<String> = first.headers().get_all("link").iter().map(|l| l.to_str().unwrap().to_string()).collect();
    assert_eq!(links, [format!("<{}{path}?to={}&limit=2>; rel=\"next\"", server.url, ids[2])]);
    let page: Value = first.json().await.unwrap();
    assert_eq!(version_names(&page), ["5", "4"]);
    assert_eq!(page[0]["metadata"], json!([{ "name": "note", "value": "about 5" }]));
    assert_eq!(page[0]["enabled"], true);

    let second: Value = server.get_json(&format!("{path}?to={}&limit=2", ids[2]), Some(&token)).await;
    assert_eq!(version_names(&second), ["3", "2"]);
    let back: Value = server.get_json(&format!("{path}?from={}&limit=2", ids[3]), Some(&token)).await;
    assert_eq!(version_names(&back), ["5", "4"]);
    let filtered: Value = server.get_json(&format!("{path}?filter=v:2"), Some(&token)).await;
    assert_eq!(version_names(&filtered), ["2"]);
    assert_eq!(server.get(&format!("{path}?filter=nocolon"), Some(&token)).await.status(), 400);

    // A check that reports an old version again makes it the newest.
    save(&server, &["2"]).await;
    let reordered = server.get_json(path, Some(&token)).await;
    assert_eq!(version_names(&reordered), ["2", "5", "4", "3", "1"]);

    // Public pipeline, private resource: versions without their metadata.
    server.request(Method::PUT, "/api/v1/teams/main/pipelines/p/expose", Some(&token)).send().await.unwrap();
    let anonymous = server.get_json(path, None).await;
    assert!(anonymous[0].get("metadata").is_none());
    server.stop().await;
}

async fn versions_are_disabled_pinned_and_traced_to_builds(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    server.set_pipeline(&token, "main", "p", PIPELINE).await;
    let ids = save(&server, &["1", "2"]).await;
    let r = "/api/v1/teams/main/pipelines/p/resources/r";
    let put = |path: String| server.request(Method::PUT, &path, Some(&token)).send();

    assert_eq!(put(format!("{r}/versions/{}/disable", ids[0])).await.unwrap().status(), 200);
    assert_eq!(server.get_json(&format!("{r}/versions/{}", ids[0]), Some(&token)).await["enabled"], false);
    put(format!("{r}/versions/{}/enable", ids[0])).await.unwrap();
    assert_eq!(server.get_json(&format!("{r}/versions/{}", ids[0]), Some(&token)).await["enabled"], true);
    assert_eq!(put(format!("{r}/versions/999999/disable")).await.unwrap().status(), 404);
    assert_eq!(put(format!("{r}/versions/abc/disable")).await.unwrap().status(), 400);

    assert_eq!(put(format!("{r}/versions/{}/pin", ids[0])).await.unwrap().status(), 200);
    let comment =
        server.put_json(&format!("{r}/pin_comment"), Some(&token), &json!({ "pin_comment": "broken 2" })).await;
    assert_eq!(comment.status(), 200);
    let pinned = server.get_json(r, Some(&token)).await;
    assert_eq!(pinned["pinned_version"], json!({ "v": "1" }));
    assert_eq!(pinned["pin_comment"], "broken 2");
    assert!(pinned.get("pinned_in_config").is_none());
    put(format!("{r}/unpin")).await.unwrap();
    let unpinned = server.get_json(r, Some(&token)).await;
    assert!(unpinned.get("pinned_version").is_none() && unpinned.get("pin_comment").is_none());

    // The build that used version 2 is listed as its input_to.
    let db = &server.test_db.db;
    let team = db.find_team("main").await.unwrap().unwrap();
    let pipeline = db.find_pipeline("main", &PipelineRef::named("p")).await.unwrap().unwrap();
    let job = db.find_job(pipeline.id, "j").await.unwrap().unwrap();
    let resource = db.find_resource(pipeline.id, "r").await.unwrap().unwrap();
    let build = db
        .create_build(&atc::db::NewBuild {
            team_id: team.id,
            pipeline_id: Some(pipeline.id),
            job_id: Some(job.id),
            name: "1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let input = NextInput { name: "r".into(), resource_id: resource.id, version_id: ids[1], first_occurrence: true };
    db.record_build_input(build, &input).await.unwrap();
    let input_to = server.get_json(&format!("{r}/versions/{}/input_to", ids[1]), Some(&token)).await;
    assert_eq!(input_to.as_array().unwrap().iter().map(|b| b["id"].as_i64().unwrap()).collect::<Vec<_>>(), [build]);
    assert_eq!(server.get_json(&format!("{r}/versions/{}/output_of", ids[1]), Some(&token)).await, json!([]));
    server.stop().await;
}

on_both_backends!(versions_list_newest_first_with_pages_and_filters, versions_are_disabled_pinned_and_traced_to_builds);
