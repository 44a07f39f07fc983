//! Artifacts for one-off builds: `fly execute` uploads its inputs as
//! gzipped tarballs and downloads the build's outputs the same way.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::AppState;
use super::access::{BuildScope, TeamScope};
use super::error::{ApiError, ApiResult};
use crate::db::ArtifactRecord;
use crate::engine::uploads::UploadError;

fn present(record: &ArtifactRecord) -> Value {
    json!({
        "id": record.id,
        "name": record.name,
        "build_id": record.build_id.unwrap_or(0),
        "created_at": record.created_at,
    })
}

pub async fn create_artifact(
    State(state): State<AppState>,
    Extension(TeamScope(team)): Extension<TeamScope>,
    request: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let limits = state.settings.upload_limits;
    let announced = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut body = request.into_body().into_data_stream();
    if announced.is_some_and(|length| length > limits.max_compressed_bytes) {
        super::body::drain_refused(body).await;
        return Err(ApiError::PayloadTooLarge(format!(
            "the upload is larger than {} bytes",
            limits.max_compressed_bytes
        )));
    }
    // The body reaches the runtime through a channel: when the runtime
    // refuses the upload mid-way, what is left is still drained (bounded)
    // here, so the client reads the refusal instead of a reset.
    let (chunks, received) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let reader = tokio::spawn(async move {
        while let Some(chunk) = body.next().await {
            if chunks.send(chunk.map_err(std::io::Error::other)).await.is_err() {
                super::body::drain_refused(body).await;
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(received, |mut received| async move {
        received.recv().await.map(|chunk| (chunk, received))
    });
    let uploaded = state.engine.upload_artifact(team.id, Box::pin(stream), limits).await;
    if uploaded.is_err() {
        let _ = reader.await;
    }
    let record = uploaded.map_err(|err| match err {
        UploadError::TooLarge(message) => ApiError::PayloadTooLarge(message),
        UploadError::Invalid(message) => ApiError::bad_request(message),
        // The disk, not the upload: the detail is logged, not shown.
        UploadError::Storage(_) => ApiError::Internal(err.to_string()),
        UploadError::Db(err) => err.into(),
    })?;
    Ok((StatusCode::CREATED, Json(present(&record))))
}

pub async fn get_artifact(
    State(state): State<AppState>,
    Extension(TeamScope(team)): Extension<TeamScope>,
    Path((_, artifact_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id: i64 =
        artifact_id.parse().map_err(|_| ApiError::bad_request(format!("'{artifact_id}' is not an artifact id")))?;
    let record =
        state.db.find_artifact(team.id, id).await?.ok_or_else(|| ApiError::not_found(format!("artifact {id}")))?;
    let stream = state
        .engine
        .download_artifact(&record)
        .await
        .map_err(|e| ApiError::not_found(format!("the files of artifact {id} ({e})")))?;
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    Ok(response)
}

pub async fn list_build_artifacts(
    State(state): State<AppState>,
    Extension(BuildScope(build)): Extension<BuildScope>,
) -> ApiResult<Json<Vec<Value>>> {
    Ok(Json(state.db.build_artifacts(build.id).await?.iter().map(present).collect()))
}

/// The workers steps run on: the local runtime is one.
pub async fn list_workers(State(state): State<AppState>) -> Json<Vec<Value>> {
    let started = state.engine.started_at;
    Json(
        state
            .engine
            .workers()
            .await
            .into_iter()
            .map(|worker| {
                json!({
                    "addr": "",
                    "baggageclaim_url": "",
                    "active_containers": worker.active_containers,
                    "active_volumes": worker.active_volumes,
                    "active_tasks": 0,
                    "resource_types": worker.resource_types.iter().map(|t| json!({ "type": t, "image": "", "version": "" })).collect::<Vec<_>>(),
                    "platform": worker.platform,
                    "tags": worker.tags,
                    "team": "",
                    "name": worker.name,
                    "version": super::info::WORKER_VERSION,
                    "start_time": started,
                    "ephemeral": false,
                    "state": "running",
                })
            })
            .collect(),
    )
}
