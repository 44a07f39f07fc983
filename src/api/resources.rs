//! Resources and resource types: list (pipeline and all) and get.

use axum::Json;
use axum::extract::{Extension, Path, State};
use serde_json::Value;

use super::AppState;
use super::access::{Caller, PipelineScope};
use super::error::{ApiError, ApiResult};
use super::present;
use crate::auth::Role;

pub async fn list_resources(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
) -> ApiResult<Json<Vec<present::Resource>>> {
    let resources = state.db.pipeline_resources(scope.pipeline.id).await?;
    let checks = state.db.last_check_builds(scope.pipeline.id).await?;
    Ok(Json(resources.iter().map(|r| present::resource(&scope.pipeline, r, &checks)).collect()))
}

/// Resources of every pipeline the caller can see.
pub async fn list_all_resources(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<present::Resource>>> {
    let mut all = Vec::new();
    for pipeline in state.db.all_pipelines().await? {
        if !(pipeline.public || caller.access.has_role(&pipeline.team_name, Role::Viewer)) {
            continue;
        }
        let checks = state.db.last_check_builds(pipeline.id).await?;
        for resource in state.db.pipeline_resources(pipeline.id).await? {
            all.push(present::resource(&pipeline, &resource, &checks));
        }
    }
    Ok(Json(all))
}

pub async fn get_resource(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name)): Path<(String, String, String)>,
) -> ApiResult<Json<present::Resource>> {
    let resource = state
        .db
        .find_resource(scope.pipeline.id, &resource_name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("resource '{resource_name}'")))?;
    let checks = state.db.last_check_builds(scope.pipeline.id).await?;
    Ok(Json(present::resource(&scope.pipeline, &resource, &checks)))
}

pub async fn list_resource_types(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
) -> ApiResult<Json<Vec<Value>>> {
    let types = state.db.pipeline_resource_types(scope.pipeline.id).await?;
    Ok(Json(types.iter().map(present::resource_type).collect()))
}
