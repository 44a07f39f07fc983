//! What `fly clear-versions`, `fly clear-resource-cache` and `fly
//! clear-task-cache` ask for: forgetting versions, caches and what shares
//! them. Each answers how many things it removed, as fly prints it.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::Uri;
use serde_json::{Value, json};

use super::AppState;
use super::access::PipelineScope;
use super::error::{ApiError, ApiResult};
use super::instance_vars::form_pairs;
use crate::db::{Channel, Resource, ResourceType, VersionOwner};

async fn find_resource(state: &AppState, scope: &PipelineScope, name: &str) -> ApiResult<Resource> {
    state
        .db
        .find_resource(scope.pipeline.id, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("resource '{name}'")))
}

async fn find_resource_type(state: &AppState, scope: &PipelineScope, name: &str) -> ApiResult<ResourceType> {
    state
        .db
        .find_resource_type(scope.pipeline.id, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("resource type '{name}'")))
}

fn identifier(scope: &PipelineScope, name: &str) -> Value {
    json!({ "name": name, "pipeline_name": scope.pipeline.name, "team_name": scope.team.name })
}

/// What clearing a resource's versions touches. In Concourse resources with
/// the same type and source share one history; here every resource has its
/// own, so it is the resource alone.
pub async fn list_shared_for_resource(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let resource = find_resource(&state, &scope, &resource_name).await?;
    Ok(Json(json!({ "resources": [identifier(&scope, &resource.name)], "resource_types": [] })))
}

/// As [`list_shared_for_resource`], for a resource type.
pub async fn list_shared_for_resource_type(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, type_name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let resource_type = find_resource_type(&state, &scope, &type_name).await?;
    Ok(Json(json!({ "resources": [], "resource_types": [identifier(&scope, &resource_type.name)] })))
}

/// `fly clear-versions -r`: the resource's version history starts over.
pub async fn clear_resource_versions(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let resource = find_resource(&state, &scope, &resource_name).await?;
    let removed = state.db.clear_versions(VersionOwner::Resource(resource.id), &resource.config_hash).await?;
    state.db.notify(Channel::Scheduler, "").await?;
    Ok(Json(json!({ "versions_removed": removed })))
}

/// `fly clear-versions --resource-type`.
pub async fn clear_resource_type_versions(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, type_name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let resource_type = find_resource_type(&state, &scope, &type_name).await?;
    let owner = VersionOwner::ResourceType(resource_type.id);
    let removed = state.db.clear_versions(owner, &resource_type.config_hash).await?;
    Ok(Json(json!({ "versions_removed": removed })))
}

/// `fly clear-resource-cache`: atc keeps no caches of fetched versions (every
/// `get` fetches again), so there is never one to remove. The body (a
/// version to clear the cache of) is accepted and changes nothing.
pub async fn clear_resource_cache(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    find_resource(&state, &scope, &resource_name).await?;
    Ok(Json(json!({ "caches_removed": 0 })))
}

/// `fly clear-task-cache`: the caches of a job's task step (only the one at
/// `?cache_path=`, if given). The next run starts with empty ones; the
/// collector deletes the files.
pub async fn clear_task_cache(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, job_name, step_name)): Path<(String, String, String, String)>,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    let job = state
        .db
        .find_job(scope.pipeline.id, &job_name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job '{job_name}'")))?;
    let cache_path = form_pairs(uri.query().unwrap_or(""))
        .into_iter()
        .find(|(key, _)| key == "cache_path")
        .map(|(_, path)| path)
        .filter(|path| !path.is_empty());
    let removed = state.db.clear_task_caches(job.id, &step_name, cache_path.as_deref()).await?;
    if removed > 0 {
        state.db.notify(Channel::Collector, "").await?;
    }
    Ok(Json(json!({ "caches_removed": removed })))
}
