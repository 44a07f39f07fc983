//! Concourse routes for things atc does not have, answered with an error
//! that says so rather than a bare 404: fly binaries to download, workers
//! registering through the TSA, containers to hijack.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;

/// `GET /api/v1/cli` (`fly sync`).
pub async fn download_cli() -> ApiError {
    ApiError::NotFound(
        "atc ships no fly binaries: download fly from the Concourse release matching /api/v1/info's version".into(),
    )
}

fn no_tsa_workers(what: &str) -> ApiError {
    ApiError::NotImplemented(format!(
        "atc runs steps on its own runtime; workers do not register through a TSA, so it cannot {what}"
    ))
}

/// `POST /api/v1/workers`.
pub async fn register_worker() -> ApiError {
    no_tsa_workers("register a worker")
}

/// `PUT /api/v1/workers/{worker_name}/heartbeat`.
pub async fn heartbeat_worker() -> ApiError {
    no_tsa_workers("take a worker's heartbeat")
}

/// `PUT /api/v1/workers/{worker_name}/land` (`fly land-worker`).
pub async fn land_worker() -> ApiError {
    no_tsa_workers("land a worker")
}

/// `PUT /api/v1/workers/{worker_name}/retire`.
pub async fn retire_worker() -> ApiError {
    no_tsa_workers("retire a worker")
}

/// `PUT /api/v1/workers/{worker_name}/prune` (`fly prune-worker`): refused
/// as Concourse refuses to prune a running worker, 400 with a `stderr`
/// that fly prints.
pub async fn prune_worker() -> Response {
    let message = "atc runs steps on its own runtime; workers do not register through a TSA, so there is no \
                   stalled worker to prune";
    (StatusCode::BAD_REQUEST, Json(json!({ "errors": [message], "stderr": message }))).into_response()
}

/// `DELETE /api/v1/workers/{worker_name}`.
pub async fn delete_worker() -> ApiError {
    no_tsa_workers("delete a worker")
}

/// `GET /api/v1/containers/destroying`, `GET /api/v1/volumes/destroying`.
pub async fn list_destroying() -> ApiError {
    no_tsa_workers("tell a worker what to destroy")
}

/// `PUT /api/v1/containers/report`, `PUT /api/v1/volumes/report`.
pub async fn worker_report() -> ApiError {
    no_tsa_workers("take a worker's report")
}

/// `GET /api/v1/teams/{team_name}/containers/{id}/hijack` (`fly intercept`).
pub async fn hijack_container() -> ApiError {
    ApiError::NotImplemented(
        "fly intercept needs the runtime to run a process in a running step (exec), which it cannot do yet".into(),
    )
}
