//! `/api/v1/wall`: a message for every user, set by admins.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::text_limits::{MAX_WALL_MESSAGE_BYTES, check_length};

const NANOS_PER_SECOND: i64 = 1_000_000_000;

pub async fn get_wall(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(match state.db.wall().await? {
        // Concourse reports the time left as a Go duration: nanoseconds.
        Some((message, Some(left))) => json!({ "message": message, "TTL": left.saturating_mul(NANOS_PER_SECOND) }),
        Some((message, None)) => json!({ "message": message }),
        None => json!({}),
    }))
}

#[derive(Deserialize)]
pub struct WallBody {
    #[serde(default)]
    message: String,
    /// Nanoseconds, as `fly set-wall --ttl` sends a Go duration.
    #[serde(default, rename = "TTL")]
    ttl: i64,
}

pub async fn set_wall(State(state): State<AppState>, JsonBody(body): JsonBody<WallBody>) -> ApiResult<StatusCode> {
    if body.message.trim().is_empty() {
        return Err(ApiError::bad_request("wall message cannot be empty"));
    }
    check_length("message", &body.message, MAX_WALL_MESSAGE_BYTES)?;
    if body.ttl < 0 {
        return Err(ApiError::bad_request("TTL must not be negative"));
    }
    let ttl = (body.ttl > 0).then(|| (body.ttl / NANOS_PER_SECOND).max(1));
    state.db.set_wall(&body.message, ttl).await?;
    Ok(StatusCode::OK)
}

pub async fn clear_wall(State(state): State<AppState>) -> ApiResult<StatusCode> {
    state.db.clear_wall().await?;
    Ok(StatusCode::OK)
}
