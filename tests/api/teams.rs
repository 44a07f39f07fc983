//! Teams over the API.

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

async fn teams_are_created_changed_renamed_and_destroyed(backend: Backend) {
    let server = TestServer::start_with_users(backend, &[("dana", "pw")]).await;
    let admin = server.admin_token().await;
    let body = json!({ "auth": { "owner": { "users": ["local:dana"] } } });
    let created = server.put_json("/api/v1/teams/dev", Some(&admin), &body).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["team"]["name"], "dev");
    assert_eq!(created["team"]["auth"]["owner"]["users"], json!(["local:dana"]));

    let dana = server.login("dana", "pw").await;
    let names = |teams: Value| teams.as_array().unwrap().iter().map(|t| t["name"].clone()).collect::<Vec<_>>();
    assert_eq!(names(server.get_json("/api/v1/teams", Some(&dana)).await), [json!("dev")]);
    assert_eq!(names(server.get_json("/api/v1/teams", Some(&admin)).await), [json!("dev"), json!("main")]);
    assert_eq!(server.get_json("/api/v1/teams/dev", Some(&dana)).await["name"], "dev");

    // An owner may change their team but not create others.
    let add_viewer = json!({ "auth": { "owner": { "users": ["local:dana"] }, "viewer": { "groups": ["local:ops"] } } });
    assert_eq!(server.put_json("/api/v1/teams/dev", Some(&dana), &add_viewer).await.status(), 200);
    assert_eq!(server.put_json("/api/v1/teams/new", Some(&dana), &add_viewer).await.status(), 403);

    let bad_role = json!({ "auth": { "king": { "users": ["local:dana"] } } });
    assert_eq!(server.put_json("/api/v1/teams/dev", Some(&admin), &bad_role).await.status(), 400);
    let empty = json!({ "auth": {} });
    assert_eq!(server.put_json("/api/v1/teams/dev", Some(&admin), &empty).await.status(), 400);
    let not_json = server.request(Method::PUT, "/api/v1/teams/dev", Some(&admin)).body("{").send().await.unwrap();
    assert_eq!(not_json.status(), 400);

    let renamed = server.put_json("/api/v1/teams/dev/rename", Some(&dana), &json!({"name": "development"})).await;
    assert_eq!(renamed.status(), 200);
    assert_eq!(server.get("/api/v1/teams/dev", Some(&admin)).await.status(), 404);
    assert_eq!(server.put_json("/api/v1/teams/main/rename", Some(&admin), &json!({"name": "x"})).await.status(), 400);

    let destroy = |team: &'static str, token: String| {
        server.request(Method::DELETE, &format!("/api/v1/teams/{team}"), Some(&token)).send()
    };
    assert_eq!(destroy("development", dana.clone()).await.unwrap().status(), 403, "only admins destroy teams");
    assert_eq!(destroy("main", admin.clone()).await.unwrap().status(), 403, "the main team stays");
    assert_eq!(destroy("development", admin.clone()).await.unwrap().status(), 204);
    assert_eq!(names(server.get_json("/api/v1/teams", Some(&admin)).await), [json!("main")]);
    server.stop().await;
}

on_both_backends!(teams_are_created_changed_renamed_and_destroyed);
