//! Many requests at once, spread over two atc nodes on one database: races
//! between them end in the outcomes a single caller would see one at a
//! time (or a clear 404/409), never in a 500 or a half-deleted object.

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Node, TestServer, tgz};

/// Rounds per test: enough for each race to show up within a few hundred
/// requests on PostgreSQL without the fixes.
const ROUNDS: usize = 25;
/// Requests racing in each round.
const RACERS: usize = 8;

const PIPELINE: &str = r#"
resources:
- name: repo
  type: mock
  source: {initial_version: v1}
jobs:
- name: build
  plan:
  - get: repo
  - task: hello
    config:
      platform: linux
      run: {path: echo, args: [hello]}
- name: test
  plan:
  - get: repo
    passed: [build]
"#;

/// Two nodes on one database and an admin token both accept.
struct Cluster {
    first: TestServer,
    second: Node,
    token: String,
}

impl Cluster {
    async fn start(backend: Backend) -> Cluster {
        let first = TestServer::start(backend).await;
        let second = first.start_another_node().await;
        let token = first.admin_token().await;
        Cluster { first, second, token }
    }

    /// The node that serves request `i`: they take turns.
    fn url(&self, i: usize) -> &str {
        if i.is_multiple_of(2) { &self.first.url } else { &self.second.url }
    }

    /// Sends a request to node `i % 2`, returning its status and body.
    async fn send(
        &self,
        i: usize,
        method: Method,
        path: impl Into<String>,
        body: Option<Body>,
    ) -> (StatusCode, String) {
        let path = path.into();
        let mut request = self.first.http.request(method, format!("{}{path}", self.url(i))).bearer_auth(&self.token);
        request = match body {
            Some(Body::Json(json)) => request.json(&json),
            Some(Body::Yaml(yaml)) => request.header("Content-Type", "application/x-yaml").body(yaml),
            Some(Body::Tgz(bytes)) => request.header("Content-Type", "application/octet-stream").body(bytes),
            None => request,
        };
        let response = request.send().await.expect("the node answers");
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }

    fn set_pipeline<'a>(
        &'a self,
        i: usize,
        team: &str,
        name: &str,
    ) -> impl Future<Output = (StatusCode, String)> + use<'a> {
        let path = format!("/api/v1/teams/{team}/pipelines/{name}/config");
        self.send(i, Method::PUT, path, Some(Body::Yaml(PIPELINE.to_string())))
    }

    async fn pipeline_names(&self, team: &str) -> Vec<String> {
        let listed = self.first.get_json(&format!("/api/v1/teams/{team}/pipelines"), Some(&self.token)).await;
        listed.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
    }

    async fn stop(self) {
        self.second.stop().await;
        self.first.stop().await;
    }
}

enum Body {
    Json(Value),
    Yaml(String),
    Tgz(Vec<u8>),
}

/// Fails on any 500, naming the request and quoting the body.
fn assert_no_server_error(what: &str, responses: &[(StatusCode, String)]) {
    for (status, body) in responses {
        assert!(!status.is_server_error(), "{what}: {status} {body}");
    }
}

/// A permutation of `names` that differs from round to round and racer to racer.
fn shuffled(names: &[String], seed: usize) -> Vec<String> {
    let mut order = names.to_vec();
    let mut state = seed as u64;
    for i in (1..order.len()).rev() {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        order.swap(i, (state >> 33) as usize % (i + 1));
    }
    order
}

async fn concurrent_orderings_all_succeed_and_one_of_them_wins(backend: Backend) {
    let cluster = Cluster::start(backend).await;
    let names: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    for name in &names {
        assert_eq!(cluster.set_pipeline(0, "main", name).await.0, 201);
    }
    for round in 0..ROUNDS {
        let orders: Vec<Vec<String>> = (0..RACERS).map(|i| shuffled(&names, round * RACERS + i)).collect();
        let responses = join_all(orders.iter().enumerate().map(|(i, order)| {
            cluster.send(i, Method::PUT, "/api/v1/teams/main/pipelines/ordering", Some(Body::Json(json!(order))))
        }))
        .await;
        assert_no_server_error(&format!("ordering, round {round}"), &responses);
        for (status, body) in &responses {
            assert_eq!(*status, 200, "ordering, round {round}: {body}");
        }
        let listed = cluster.pipeline_names("main").await;
        assert!(orders.contains(&listed), "round {round}: {listed:?} is none of the orders asked for: {orders:?}");
    }
    cluster.stop().await;
}

async fn concurrent_creations_of_one_pipeline_create_it_once(backend: Backend) {
    let cluster = Cluster::start(backend).await;
    for round in 0..ROUNDS {
        let name = format!("new-{round}");
        let responses = join_all((0..RACERS).map(|i| cluster.set_pipeline(i, "main", &name))).await;
        assert_no_server_error(&format!("creating {name}"), &responses);
        let created = responses.iter().filter(|(status, _)| *status == 201).count();
        let updated = responses.iter().filter(|(status, _)| *status == 200).count();
        assert_eq!(created, 1, "{name} is created exactly once: {responses:?}");
        for (status, body) in &responses {
            assert!([201, 200, 409].contains(&status.as_u16()), "creating {name}: {status} {body}");
        }
        // Each success saved the configuration once more; a 409 saved nothing.
        let config =
            cluster.first.get(&format!("/api/v1/teams/main/pipelines/{name}/config"), Some(&cluster.token)).await;
        assert_eq!(config.status(), 200);
        assert_eq!(config.headers()["x-concourse-config-version"], (created + updated).to_string().as_str());
    }
    assert_eq!(cluster.pipeline_names("main").await.len(), ROUNDS);
    cluster.stop().await;
}

async fn deleting_a_team_while_it_is_written_to_leaves_nothing_behind(backend: Backend) {
    let cluster = Cluster::start(backend).await;
    let upload = tgz(&[("file", "contents")]);
    for round in 0..ROUNDS {
        let team = format!("team-{round}");
        cluster.first.set_team(&cluster.token, &team, "owner", "admin").await;
        assert_eq!(cluster.set_pipeline(0, &team, "base").await.0, 201);
        let orderings = join_all((0..RACERS / 2).map(|i| {
            let path = format!("/api/v1/teams/{team}/pipelines/ordering");
            cluster.send(i, Method::PUT, path, Some(Body::Json(json!(["base"]))))
        }));
        let saves = join_all((0..RACERS).map(|i| cluster.set_pipeline(i, &team, &format!("p{i}"))));
        let uploads = join_all((0..RACERS / 2).map(|i| {
            cluster.send(i, Method::POST, format!("/api/v1/teams/{team}/artifacts"), Some(Body::Tgz(upload.clone())))
        }));
        let delete = cluster.send(round, Method::DELETE, format!("/api/v1/teams/{team}"), None);
        let (saves, uploads, orderings, delete) = tokio::join!(saves, uploads, orderings, delete);
        assert_eq!(delete.0, 204, "deleting {team}: {}", delete.1);
        assert_no_server_error(&format!("ordering pipelines of {team}"), &orderings);
        for (status, body) in &orderings {
            assert!([200, 404].contains(&status.as_u16()), "ordering pipelines of {team}: {status} {body}");
        }
        assert_no_server_error(&format!("saving pipelines of {team}"), &saves);
        assert_no_server_error(&format!("uploading artifacts to {team}"), &uploads);
        for (status, body) in saves.iter().chain(&uploads) {
            assert!([201, 404].contains(&status.as_u16()), "writing to {team}: {status} {body}");
        }
        assert_eq!(cluster.first.get(&format!("/api/v1/teams/{team}"), Some(&cluster.token)).await.status(), 404);
    }
    let db = &cluster.first.test_db;
    assert_eq!(db.count("SELECT COUNT(*) FROM pipelines WHERE team_id NOT IN (SELECT id FROM teams)").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM artifacts WHERE team_id NOT IN (SELECT id FROM teams)").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM pipelines").await, 0, "only the deleted teams had pipelines");
    cluster.stop().await;
}

async fn triggering_jobs_of_a_pipeline_being_deleted_never_fails(backend: Backend) {
    let cluster = Cluster::start(backend).await;
    for round in 0..ROUNDS {
        let name = format!("doomed-{round}");
        assert_eq!(cluster.set_pipeline(0, "main", &name).await.0, 201);
        let path = format!("/api/v1/teams/main/pipelines/{name}");
        let triggers =
            join_all((0..RACERS).map(|i| cluster.send(i, Method::POST, format!("{path}/jobs/build/builds"), None)));
        let delete = cluster.send(round, Method::DELETE, &path, None);
        let (triggers, delete) = tokio::join!(triggers, delete);
        assert_eq!(delete.0, 204, "deleting {name}: {}", delete.1);
        assert_no_server_error(&format!("triggering jobs of {name}"), &triggers);
        for (status, body) in &triggers {
            assert!([200, 404].contains(&status.as_u16()), "triggering a job of {name}: {status} {body}");
        }
    }
    let db = &cluster.first.test_db;
    assert_eq!(db.count("SELECT COUNT(*) FROM builds WHERE job_id IS NOT NULL").await, 0, "every job was deleted");
    cluster.stop().await;
}

async fn concurrent_reruns_of_a_build_get_numbers_of_their_own(backend: Backend) {
    let cluster = Cluster::start(backend).await;
    assert_eq!(cluster.set_pipeline(0, "main", "p").await.0, 201);
    let jobs = "/api/v1/teams/main/pipelines/p/jobs/build/builds";
    let (status, body) = cluster.send(0, Method::POST, jobs, None).await;
    assert_eq!(status, 200, "trigger: {body}");
    let build: Value = serde_json::from_str(&body).unwrap();
    let original = build["name"].as_str().unwrap().to_string();
    let mut names = Vec::new();
    for round in 0..ROUNDS {
        let responses =
            join_all((0..RACERS).map(|i| cluster.send(i, Method::POST, format!("{jobs}/{original}"), None))).await;
        assert_no_server_error(&format!("rerunning, round {round}"), &responses);
        for (status, body) in responses {
            assert_eq!(status, 200, "rerun, round {round}: {body}");
            let rerun: Value = serde_json::from_str(&body).unwrap();
            names.push(rerun["name"].as_str().unwrap().to_string());
        }
    }
    names.sort_by_key(|name| name.split('.').nth(1).and_then(|n| n.parse::<usize>().ok()));
    let expected: Vec<String> = (1..=ROUNDS * RACERS).map(|n| format!("{original}.{n}")).collect();
    assert_eq!(names, expected, "every rerun has a number of its own");
    cluster.stop().await;
}

async fn concurrent_creations_of_one_team_create_it_once(backend: Backend) {
    let cluster = Cluster::start(backend).await;
    let auth = json!({ "auth": { "owner": { "users": ["local:admin"], "groups": [] } } });
    for round in 0..ROUNDS {
        let team = format!("team-{round}");
        let responses =
            join_all((0..RACERS).map(|i| {
                cluster.send(i, Method::PUT, format!("/api/v1/teams/{team}"), Some(Body::Json(auth.clone())))
            }))
            .await;
        assert_no_server_error(&format!("creating {team}"), &responses);
        let statuses: Vec<u16> = responses.iter().map(|(status, _)| status.as_u16()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{team} is created once: {responses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), RACERS - 1, "{team}: {responses:?}");
    }
    cluster.stop().await;
}

on_both_backends!(
    concurrent_orderings_all_succeed_and_one_of_them_wins,
    concurrent_creations_of_one_pipeline_create_it_once,
    deleting_a_team_while_it_is_written_to_leaves_nothing_behind,
    triggering_jobs_of_a_pipeline_being_deleted_never_fails,
    concurrent_reruns_of_a_build_get_numbers_of_their_own,
    concurrent_creations_of_one_team_create_it_once,
);
