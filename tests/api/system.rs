//! System routes: the wall and the components.

use reqwest::Method;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

async fn the_wall_shows_a_message_until_it_expires_or_is_cleared(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    assert_eq!(server.get_json("/api/v1/wall", None).await, json!({}));

    let set = server.put_json("/api/v1/wall", Some(&admin), &json!({ "message": "upgrade at noon" })).await;
    assert_eq!(set.status(), 200);
    assert_eq!(server.get_json("/api/v1/wall", None).await, json!({ "message": "upgrade at noon" }));

    let hour = 3_600_i64 * 1_000_000_000;
    server.put_json("/api/v1/wall", Some(&admin), &json!({ "message": "soon", "TTL": hour })).await;
    let wall = server.get_json("/api/v1/wall", None).await;
    let left = wall["TTL"].as_i64().unwrap();
    assert!(left > hour - 10 * 1_000_000_000 && left <= hour, "{wall}");

    let empty = server.put_json("/api/v1/wall", Some(&admin), &json!({ "message": " " })).await;
    assert_eq!(empty.status(), 400);
    let cleared = server.request(Method::DELETE, "/api/v1/wall", Some(&admin)).send().await.unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(server.get_json("/api/v1/wall", None).await, json!({}));
    server.stop().await;
}

async fn components_can_be_listed_and_paused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    server.test_db.db.register_component("tracker", std::time::Duration::from_secs(10)).await.unwrap();
    let put = |path: &'static str| server.request(Method::PUT, path, Some(&admin)).send();
    assert_eq!(put("/api/v1/components/tracker/pause").await.unwrap().status(), 200);
    let components = server.get_json("/api/v1/components", Some(&admin)).await;
    let tracker = components.as_array().unwrap().iter().find(|c| c["name"] == "tracker").unwrap().clone();
    assert_eq!(tracker["paused"], true);
    assert_eq!(tracker["interval"], 10_000_000_000_i64);
    assert!(server.test_db.db.component_paused("tracker").await.unwrap());
    put("/api/v1/components/unpause").await.unwrap();
    assert!(!server.test_db.db.component_paused("tracker").await.unwrap());
    assert_eq!(put("/api/v1/components/nope/pause").await.unwrap().status(), 404);
    server.stop().await;
}

async fn the_collector_removes_expired_tokens(backend: Backend) {
    let test_db = crate::support::TestDb::migrated(backend).await;
    let db = &test_db.db;
    let token = |expires_at| atc::db::AccessToken {
        username: "u".into(),
        connector: "local".into(),
        sub: "local:u".into(),
        csrf_token: "c".into(),
        expires_at,
    };
    db.save_access_token("expired", &token(1)).await.unwrap();
    db.save_access_token(
        "valid",
        &token(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 + 3600),
    )
    .await
    .unwrap();
    assert_eq!(test_db.count("SELECT COUNT(*) FROM access_tokens").await, 2);
    // The collector runs as soon as the server starts.
    let (runtime, _work) = crate::support::local_runtime().await;
    let server = atc::server::start(db.clone(), crate::support::server_options_with(runtime, &[])).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while test_db.count("SELECT COUNT(*) FROM access_tokens").await != 1 {
        assert!(std::time::Instant::now() < deadline, "the expired token was never collected");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(test_db.count("SELECT COUNT(*) FROM access_tokens WHERE token_hash = 'valid'").await, 1);
    server.stop().await.unwrap();
}

on_both_backends!(the_collector_removes_expired_tokens);

on_both_backends!(the_wall_shows_a_message_until_it_expires_or_is_cleared, components_can_be_listed_and_paused);
