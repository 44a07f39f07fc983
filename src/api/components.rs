//! `/api/v1/components`: the background components, and pausing them (admins).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};

pub async fn list_components(State(state): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    let components = state.db.components().await?;
    Ok(Json(
        components
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    // Go's time.Duration marshals as nanoseconds.
                    "interval": c.interval_seconds.saturating_mul(1_000_000_000),
                    "last_ran": crate::clock::rfc3339(c.last_ran),
                    "paused": c.paused,
                })
            })
            .collect(),
    ))
}

async fn set_paused(state: &AppState, name: Option<&str>, paused: bool) -> ApiResult<StatusCode> {
    if state.db.set_components_paused(name, paused).await? {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::not_found(format!("component '{}'", name.unwrap_or_default())))
    }
}

pub async fn pause_all(State(state): State<AppState>) -> ApiResult<StatusCode> {
    set_paused(&state, None, true).await
}

pub async fn unpause_all(State(state): State<AppState>) -> ApiResult<StatusCode> {
    set_paused(&state, None, false).await
}

pub async fn pause_component(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    set_paused(&state, Some(&name), true).await
}

pub async fn unpause_component(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    set_paused(&state, Some(&name), false).await
}
