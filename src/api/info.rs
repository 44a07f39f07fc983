//! `/api/v1/info`, `/api/v1/info/creds` and `/api/v1/health`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::db::DbError;

/// The Concourse release whose API atc speaks; `fly` of the same minor
/// version works against atc without a version warning.
pub const CONCOURSE_VERSION: &str = "8.2.5";
pub const WORKER_VERSION: &str = "2.5";

pub async fn get_info(State(state): State<AppState>) -> Json<serde_json::Value> {
    let mut info = json!({
        "version": CONCOURSE_VERSION,
        "worker_version": WORKER_VERSION,
        "feature_flags": {
            "global_resources": false,
            "build_rerun": false,
            "cache_streamed_volumes": false,
            "resource_causality": true,
        },
        "external_url": state.settings.external_url,
    });
    if !state.settings.cluster_name.is_empty() {
        info["cluster_name"] = state.settings.cluster_name.clone().into();
    }
    Json(info)
}

/// The credential manager atc is configured with, by name, described
/// without secrets; `{}` when there is none.
pub async fn get_info_creds(State(state): State<AppState>) -> Json<serde_json::Value> {
    let credentials = state.engine.credentials.manager();
    let mut configured = serde_json::Map::new();
    if let Some(description) = credentials.describe() {
        configured.insert(credentials.name().to_string(), description);
    }
    Json(configured.into())
}

/// Healthy when the database answers; 503 (`failing`) saying why when it
/// does not, within `--postgres-acquire-timeout` while it is down.
pub async fn get_health(State(state): State<AppState>) -> Response {
    let database = match state.db.ping().await {
        Ok(()) => json!({ "status": "healthy" }),
        Err(err @ DbError::Unavailable(_)) => json!({ "status": "unhealthy", "error": err.to_string() }),
        Err(err) => {
            // Anyone may ask: the details go to the log only.
            tracing::warn!(error = %err, "health check query failed");
            json!({ "status": "unhealthy", "error": "the database failed to answer a query" })
        }
    };
    let failing = database["status"] != "healthy";
    let body = json!({
        "status": if failing { "failing" } else { "ok" },
        "timestamp": crate::clock::rfc3339(crate::db::now()),
        "database": database,
        "workers": { "status": "healthy", "total": 1, "running": 1 },
        "components": [],
    });
    let status = if failing { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (status, Json(body)).into_response()
}
