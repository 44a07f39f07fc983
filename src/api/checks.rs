//! Asking for a check now: `fly check-resource`, `fly check-resource-type`,
//! webhooks from the resource's source (`?webhook_token=`), and prototypes,
//! which atc cannot check.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::{StatusCode, Uri};
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::access::{Caller, PipelineScope};
use super::body::RawBody;
use super::error::{ApiError, ApiResult};
use super::instance_vars::form_pairs;
use super::present;
use crate::auth::Role;
use crate::db::VersionOwner;
use crate::lidar::{CheckTarget, request_check};

/// `{"from": {version}}`; fly's `shallow` is accepted and ignored: every
/// check here is shallow.
#[derive(Deserialize, Default)]
pub(crate) struct CheckBody {
    #[serde(default)]
    from: Option<serde_json::Map<String, Value>>,
}

pub(crate) fn check_body(bytes: &[u8]) -> ApiResult<CheckBody> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(CheckBody::default());
    }
    super::body::parse_json(bytes)
}

async fn resource_types(state: &AppState, scope: &PipelineScope) -> ApiResult<HashMap<String, Value>> {
    Ok(state.db.pipeline_resource_types(scope.pipeline.id).await?.into_iter().map(|t| (t.name, t.config)).collect())
}

async fn check_response(state: &AppState, build: Option<i64>) -> ApiResult<(StatusCode, Json<present::Build>)> {
    let id =
        build.ok_or_else(|| ApiError::Conflict("another check of this resource is being started; try again".into()))?;
    let build = super::builds::find_created_build(state, id).await?;
    Ok((StatusCode::CREATED, Json(present::build(&build))))
}

async fn check_resource_named(
    state: &AppState,
    scope: &PipelineScope,
    name: &str,
    from: Option<Value>,
) -> ApiResult<(StatusCode, Json<present::Build>)> {
    let resource = state
        .db
        .find_resource(scope.pipeline.id, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("resource '{name}'")))?;
    let types = resource_types(state, scope).await?;
    let target = CheckTarget {
        pipeline: &scope.pipeline,
        owner: VersionOwner::Resource(resource.id),
        name: &resource.name,
        config: &resource.config,
        resource_types: &types,
    };
    let build = request_check(&state.db, &target, from).await?;
    check_response(state, build).await
}

pub async fn check_resource(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name)): Path<(String, String, String)>,
    RawBody(body): RawBody,
) -> ApiResult<(StatusCode, Json<present::Build>)> {
    let body = check_body(&body)?;
    check_resource_named(&state, &scope, &resource_name, body.from.map(Value::Object)).await
}

/// No login: the resource's `webhook_token` is the credential. Without the
/// right token a caller who cannot read the team learns nothing, not even
/// whether the pipeline or resource exists.
pub async fn check_resource_webhook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    scope: Option<Extension<PipelineScope>>,
    Path((_, _, resource_name)): Path<(String, String, String)>,
    uri: Uri,
) -> ApiResult<(StatusCode, Json<present::Build>)> {
    let token = form_pairs(uri.query().unwrap_or(""))
        .into_iter()
        .find(|(key, _)| key == "webhook_token")
        .map(|(_, value)| value)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing webhook_token"))?;
    let Some(Extension(scope)) = scope else { return Err(ApiError::Unauthorized) };
    let resource = match state.db.find_resource(scope.pipeline.id, &resource_name).await? {
        Some(resource) => resource,
        None if caller.access.has_role(&scope.team.name, Role::Viewer) => {
            return Err(ApiError::not_found(format!("resource '{resource_name}'")));
        }
        None => return Err(ApiError::Unauthorized),
    };
    let expected = resource.config.get("webhook_token").and_then(Value::as_str).unwrap_or("");
    if expected.is_empty() || expected != token {
        return Err(ApiError::Unauthorized);
    }
    check_resource_named(&state, &scope, &resource_name, None).await
}

pub async fn check_resource_type(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, type_name)): Path<(String, String, String)>,
    RawBody(body): RawBody,
) -> ApiResult<(StatusCode, Json<present::Build>)> {
    let body = check_body(&body)?;
    let resource_type = state
        .db
        .find_resource_type(scope.pipeline.id, &type_name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("resource type '{type_name}'")))?;
    let types = resource_types(&state, &scope).await?;
    let target = CheckTarget {
        pipeline: &scope.pipeline,
        owner: VersionOwner::ResourceType(resource_type.id),
        name: &resource_type.name,
        config: &resource_type.config,
        resource_types: &types,
    };
    let build = request_check(&state.db, &target, body.from.map(Value::Object)).await?;
    check_response(&state, build).await
}

/// Concourse's experimental prototypes: atc accepts a configuration's
/// `prototypes:` (so such pipelines can be set) but never runs them, so it
/// says which of the two reasons keeps it from checking this one.
pub async fn check_prototype(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, prototype_name)): Path<(String, String, String)>,
    RawBody(body): RawBody,
) -> ApiResult<Infallible> {
    check_body(&body)?;
    let config = state.db.pipeline_config(scope.pipeline.id).await?.map(|(config, _)| config).unwrap_or_default();
    let declared = config["prototypes"]
        .as_array()
        .is_some_and(|prototypes| prototypes.iter().any(|p| p["name"] == prototype_name.as_str()));
    let pipeline = &scope.pipeline.name;
    Err(if declared {
        ApiError::NotImplemented(format!(
            "atc does not run prototypes, so it cannot check prototype '{prototype_name}' of pipeline '{pipeline}'"
        ))
    } else {
        ApiError::NotFound(format!(
            "pipeline '{pipeline}' has no prototype named '{prototype_name}' (atc does not support prototypes)"
        ))
    })
}
