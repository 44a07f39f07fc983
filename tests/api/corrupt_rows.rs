//! A stored row that does not parse (changed outside atc, or damaged) is
//! an error naming its table, row and column wherever it is read: a 500
//! from the API, an errored build from the engine, a pipeline the checker
//! leaves alone. Never a `null`, an empty plan or a run with defaults.

use atc::db::Channel;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

const PIPELINE: &str = "
resources:
- name: r
  type: mock
  source: {initial_version: v1}
jobs:
- name: j
  plan:
  - get: r
";

/// The API's answer to `path`: its status and its one error message.
async fn error_of(server: &TestServer, token: &str, path: &str) -> (u16, String) {
    let response = server.get(path, Some(token)).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["errors"][0].as_str().unwrap_or_default().to_string())
}

async fn the_api_names_a_corrupt_row(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let set = server.set_pipeline(&token, "main", "p", PIPELINE).await;
    assert!(set.status().is_success());
    let resources = "/api/v1/teams/main/pipelines/p/resources";

    let id = server.test_db.scalar("UPDATE resources SET config = 'not json' WHERE name = 'r' RETURNING id").await;
    let expected =
        format!("stored data is corrupt: column config of resources row {id} is not JSON (line 1, column 2)");
    assert_eq!(error_of(&server, &token, &format!("{resources}/r")).await, (500, expected.clone()));
    assert_eq!(error_of(&server, &token, resources).await, (500, expected));

    // JSON, but not a job: the job is not shown (or scheduled) without its gets.
    let id = server.test_db.scalar("UPDATE jobs SET config = '{\"plan\": 5}' WHERE name = 'j' RETURNING id").await;
    let (status, message) = error_of(&server, &token, "/api/v1/teams/main/pipelines/p/jobs/j").await;
    assert_eq!(status, 500);
    assert!(
        message.starts_with(&format!(
            "stored data is corrupt: column config of jobs row {id} does not have the stored shape"
        )),
        "{message}"
    );

    let id = server.test_db.scalar("UPDATE pipelines SET groups = '[' WHERE name = 'p' RETURNING id").await;
    let (status, message) = error_of(&server, &token, "/api/v1/teams/main/pipelines").await;
    assert_eq!(status, 500);
    assert_eq!(
        message,
        format!("stored data is corrupt: column groups of pipelines row {id} is cut short (line 1, column 1)")
    );
    server.stop().await;
}

async fn a_build_whose_plan_is_corrupt_ends_errored_naming_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let id = server
        .test_db
        .scalar(
            "INSERT INTO builds (name, status, team_id, create_time, plan, public_plan)
             VALUES ('one-off', 'started', (SELECT id FROM teams WHERE name = 'main'), 0, 'not json', 'not json')
             RETURNING id",
        )
        .await;
    server.test_db.db.notify(Channel::BuildTracker, &id.to_string()).await.unwrap();

    let watched = server.watch(&token, id).await;
    assert_eq!(watched.status(), "errored");
    let message = format!("column plan of builds row {id} is not JSON");
    assert!(watched.output().contains(&message), "{}", watched.output());
    let (status, message) = error_of(&server, &token, &format!("/api/v1/builds/{id}/plan")).await;
    assert_eq!((status, message.contains(&format!("column public_plan of builds row {id}"))), (500, true), "{message}");
    server.stop().await;
}

/// The checker runs no check of a pipeline with a corrupt row (it would
/// run with defaults in place of the row), and checks the others.
async fn the_checker_skips_only_the_pipeline_with_a_corrupt_row(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    // Set first (paused, so not checked yet), and listed before the other.
    let set = server.set_pipeline(&token, "main", "broken", PIPELINE).await;
    assert!(set.status().is_success());
    server.test_db.scalar("UPDATE resources SET config = '{' WHERE name = 'r' RETURNING id").await;
    let unpause = server.request(reqwest::Method::PUT, "/api/v1/teams/main/pipelines/broken/unpause", Some(&token));
    assert_eq!(unpause.send().await.unwrap().status(), 200);
    server.set_and_unpause(&token, "fine", PIPELINE).await;

    let versions = "/api/v1/teams/main/pipelines/fine/resources/r/versions";
    server
        .wait_for(&token, versions, "a version of the healthy pipeline", |v| {
            v.as_array().is_some_and(|v| !v.is_empty())
        })
        .await;
    let checks_of_broken = server
        .test_db
        .count(
            "SELECT COUNT(*) FROM builds b JOIN resources r ON r.id = b.resource_id
             JOIN pipelines p ON p.id = r.pipeline_id WHERE p.name = 'broken'",
        )
        .await;
    assert_eq!(checks_of_broken, 0);
    server.stop().await;
}

on_both_backends!(
    the_api_names_a_corrupt_row,
    a_build_whose_plan_is_corrupt_ends_errored_naming_it,
    the_checker_skips_only_the_pipeline_with_a_corrupt_row,
);
