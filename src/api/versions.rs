//! Resource versions: list, get, enable/disable, pin/unpin, pin comment,
//! and the builds that used or produced a version.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::access::{Caller, PipelineScope};
use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::instance_vars::form_pairs;
use super::json_array::json_array;
use super::text_limits::{MAX_COMMENT_BYTES, check_length};
use super::{pagination, present};
use crate::auth::Role;
use crate::db::{Resource, ResourceVersion, VersionOwner, VersionPage};

async fn find_resource(state: &AppState, scope: &PipelineScope, name: &str) -> ApiResult<Resource> {
    state
        .db
        .find_resource(scope.pipeline.id, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("resource '{name}'")))
}

async fn find_version(state: &AppState, resource: &Resource, id: &str) -> ApiResult<ResourceVersion> {
    let version_id: i64 = id.parse().map_err(|_| ApiError::bad_request(format!("'{id}' is not a version id")))?;
    state
        .db
        .find_version(VersionOwner::Resource(resource.id), version_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("version {version_id} of resource '{}'", resource.name)))
}

/// Metadata can carry details of private resources: only the team (or
/// anyone, for a public resource) sees it.
fn present_version(version: &ResourceVersion, hide_metadata: bool) -> Value {
    let mut presented = json!({
        "id": version.id,
        "version": version.version,
        "enabled": version.enabled,
    });
    if !hide_metadata && version.metadata.as_array().is_some_and(|m| !m.is_empty()) {
        presented["metadata"] = version.metadata.clone();
    }
    presented
}

fn hides_metadata(caller: &Caller, scope: &PipelineScope, resource: &Resource) -> bool {
    let public = resource.config.get("public").and_then(Value::as_bool).unwrap_or(false);
    !public && !caller.access.has_role(&scope.team.name, Role::Viewer)
}

pub async fn list_versions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name)): Path<(String, String, String)>,
    uri: Uri,
) -> ApiResult<Response> {
    let resource = find_resource(&state, &scope, &resource_name).await?;
    let query = pagination::page_query(&uri)?;
    let mut filter = Map::new();
    for (key, value) in form_pairs(uri.query().unwrap_or("")) {
        if key == "filter" {
            let (field, wanted) = value
                .split_once(':')
                .ok_or_else(|| ApiError::bad_request(format!("filter '{value}' must be FIELD:VALUE")))?;
            filter.insert(field.to_string(), Value::String(wanted.to_string()));
        }
    }
    let page = VersionPage { from: query.from, to: query.to, limit: query.limit };
    let list = state.db.list_versions(resource.id, &resource.config_hash, page, &filter).await?;
    let hide = hides_metadata(&caller, &scope, &resource);
    let mut response = json_array(list.versions, move |v| present_version(&v, hide));
    let base = format!("{}{}", state.settings.external_url, uri.path());
    let instance_vars: String = form_pairs(uri.query().unwrap_or(""))
        .into_iter()
        .filter(|(key, _)| key == "vars" || key.starts_with("vars."))
        .map(|(key, value)| serde_urlencoded::to_string([(key, value)]).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("&");
    pagination::add_links(&mut response, &base, list.older, list.newer, query.limit, &instance_vars);
    Ok(response)
}

pub async fn get_version(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name, version_id)): Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let resource = find_resource(&state, &scope, &resource_name).await?;
    let version = find_version(&state, &resource, &version_id).await?;
    Ok(Json(present_version(&version, hides_metadata(&caller, &scope, &resource))))
}

async fn set_enabled(
    state: &AppState,
    scope: &PipelineScope,
    resource_name: &str,
    version_id: &str,
    enabled: bool,
) -> ApiResult<StatusCode> {
    let resource = find_resource(state, scope, resource_name).await?;
    let version = find_version(state, &resource, version_id).await?;
    state.db.set_version_enabled(resource.id, version.id, enabled).await?;
    state.db.notify(crate::db::Channel::Scheduler, "").await?;
    Ok(StatusCode::OK)
}

pub async fn enable_version(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name, version_id)): Path<(String, String, String, String)>,
) -> ApiResult<StatusCode> {
    set_enabled(&state, &scope, &resource_name, &version_id, true).await
}

pub async fn disable_version(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name, version_id)): Path<(String, String, String, String)>,
) -> ApiResult<StatusCode> {
    set_enabled(&state, &scope, &resource_name, &version_id, false).await
}

pub async fn pin_version(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name, version_id)): Path<(String, String, String, String)>,
) -> ApiResult<StatusCode> {
    let resource = find_resource(&state, &scope, &resource_name).await?;
    let version = find_version(&state, &resource, &version_id).await?;
    state.db.pin_version(resource.id, Some(version.id)).await?;
    state.db.notify(crate::db::Channel::Scheduler, "").await?;
    Ok(StatusCode::OK)
}

pub async fn unpin_resource(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let resource = find_resource(&state, &scope, &resource_name).await?;
    state.db.pin_version(resource.id, None).await?;
    state.db.notify(crate::db::Channel::Scheduler, "").await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
pub struct PinCommentBody {
    pin_comment: String,
}

pub async fn set_pin_comment(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<PinCommentBody>,
) -> ApiResult<StatusCode> {
    check_length("pin_comment", &body.pin_comment, MAX_COMMENT_BYTES)?;
    let resource = find_resource(&state, &scope, &resource_name).await?;
    state.db.set_pin_comment(resource.id, &body.pin_comment).await?;
    Ok(StatusCode::OK)
}

async fn builds_of_version(
    state: &AppState,
    scope: &PipelineScope,
    resource_name: &str,
    version_id: &str,
    as_input: bool,
) -> ApiResult<Response> {
    let resource = find_resource(state, scope, resource_name).await?;
    let version = find_version(state, &resource, version_id).await?;
    let builds = state.db.builds_with_version(version.id, as_input).await?;
    Ok(json_array(builds, |build| present::build(&build)))
}

pub async fn input_to(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name, version_id)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    builds_of_version(&state, &scope, &resource_name, &version_id, true).await
}

pub async fn output_of(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name, version_id)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    builds_of_version(&state, &scope, &resource_name, &version_id, false).await
}
