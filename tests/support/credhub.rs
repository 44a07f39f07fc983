//! A fake CredHub, with the UAA it names, on a loopback port: no CredHub
//! server can be had here. It answers only what atc asks (`GET /info`,
//! `POST /oauth/token` with the client credentials grant, `GET
//! /api/v1/data?name=...&current=true`), with the bodies, statuses and
//! error bodies of CredHub's and UAA's published API examples (CredHub API
//! docs, "Get by Name"; UAA API docs, "Client Credentials Grant"). Only the
//! behaviour atc relies on is modelled: tokens, their expiry, not-found.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "concourse_client";
pub const CLIENT_SECRET: &str = "concourse_client_secret";

#[derive(Default)]
struct Store {
    /// By name: the credential's type and value.
    credentials: Mutex<HashMap<String, (String, Value)>>,
    /// The tokens CredHub still takes.
    tokens: Mutex<Vec<String>>,
    issued: AtomicUsize,
    url: Mutex<String>,
}

pub struct FakeCredHub {
    pub url: String,
    store: Arc<Store>,
}

impl FakeCredHub {
    pub async fn start() -> FakeCredHub {
        let store = Arc::new(Store::default());
        let app = Router::new()
            .route("/info", get(info))
            .route("/oauth/token", post(token))
            .route("/api/v1/data", get(data))
            .with_state(store.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        *store.url.lock().unwrap() = url.clone();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeCredHub { url, store }
    }

    /// Sets credential `name` of `kind` (value, json, password, user, certificate, ssh).
    pub fn set(&self, name: &str, kind: &str, value: Value) {
        self.store.credentials.lock().unwrap().insert(name.to_string(), (kind.to_string(), value));
    }

    /// Makes every token issued so far expired, as UAA's expiry would.
    pub fn expire_tokens(&self) {
        self.store.tokens.lock().unwrap().clear();
    }

    /// How many tokens UAA issued.
    pub fn tokens_issued(&self) -> usize {
        self.store.issued.load(Ordering::SeqCst)
    }
}

/// CredHub's `/info` (no authentication): where its UAA is (this server too).
async fn info(State(store): State<Arc<Store>>) -> Json<Value> {
    let url = store.url.lock().unwrap().clone();
    Json(json!({ "auth-server": { "url": url }, "app": { "name": "CredHub" } }))
}

/// UAA's token endpoint, client credentials grant.
async fn token(State(store): State<Arc<Store>>, Form(form): Form<HashMap<String, String>>) -> Response {
    let field = |key: &str| form.get(key).map(String::as_str);
    if field("grant_type") != Some("client_credentials") {
        let body = json!({ "error": "unsupported_grant_type", "error_description": "Unsupported grant type" });
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    if field("client_id") != Some(CLIENT_ID) || field("client_secret") != Some(CLIENT_SECRET) {
        let body = json!({ "error": "unauthorized", "error_description": "Bad credentials" });
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let number = store.issued.fetch_add(1, Ordering::SeqCst);
    let access_token = format!("bd9d8e0ea9c4450f9b7a0a4d7d1f6c2a-{number}");
    store.tokens.lock().unwrap().push(access_token.clone());
    Json(json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": 43199,
        "scope": "credhub.read credhub.write",
        "jti": format!("bd9d8e0ea9c4450f9b7a0a4d7d1f6c2a-{number}"),
    }))
    .into_response()
}

/// CredHub's "Get by Name" (`current=true`): the one current version.
async fn data(
    State(store): State<Arc<Store>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match bearer {
        None => {
            let body = json!({
                "error": "invalid_token",
                "error_description": "Full authentication is required to access this resource",
            });
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
        Some(token) if !store.tokens.lock().unwrap().iter().any(|t| t == token) => {
            let body = json!({ "error": "access_token_expired", "error_description": "Access token expired" });
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
        Some(_) => {}
    }
    let name = query.get("name").cloned().unwrap_or_default();
    let found = store.credentials.lock().unwrap().get(&name).cloned();
    match found {
        Some((kind, value)) => Json(json!({
            "data": [{
                "type": kind,
                "version_created_at": "2019-02-01T20:37:38Z",
                "id": "2e094eb6-8c7f-4b9d-a5d6-d4e3e5e7f4c7",
                "name": name,
                "metadata": null,
                "value": value,
            }]
        }))
        .into_response(),
        None => {
            let body = json!({
                "error": "The request could not be completed because the credential does not exist or you do not have sufficient authorization."
            });
            (StatusCode::NOT_FOUND, Json(body)).into_response()
        }
    }
}
