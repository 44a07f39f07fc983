//! `GET` and `PUT` of a pipeline's configuration, as `fly set-pipeline` and
//! `fly get-pipeline` use them.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::access::{PipelineScope, TeamScope};
use super::body::{MAX_CONFIG_BYTES, RawBody};
use super::error::{ApiError, ApiResult};
use super::instance_vars;
use super::names::validate_name;
use crate::config;
use crate::db::{PipelineRef, PipelineSpec};
use crate::engine::compile;

pub const CONFIG_VERSION_HEADER: &str = "x-concourse-config-version";

pub async fn get_config(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
) -> ApiResult<Response> {
    let (config, version) = state
        .db
        .pipeline_config(scope.pipeline.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("pipeline '{}'", scope.pipeline.name)))?;
    let mut response = Json(json!({ "config": config })).into_response();
    response.headers_mut().insert(CONFIG_VERSION_HEADER, HeaderValue::from(version));
    Ok(response)
}

/// Validates and saves a configuration: 201 when the pipeline is new, 200
/// when it changed, 400 with every error when it is invalid, 409 when the
/// `X-Concourse-Config-Version` given is no longer current.
pub async fn save_config(
    State(state): State<AppState>,
    Extension(TeamScope(team)): Extension<TeamScope>,
    axum::extract::Path((_, pipeline_name)): axum::extract::Path<(String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    RawBody(body): RawBody<MAX_CONFIG_BYTES>,
) -> ApiResult<Response> {
    require_config_media_type(&headers)?;
    let expected_version = expected_config_version(&headers)?;
    let name_warnings = validate_name("pipeline", &pipeline_name)?;
    let (spec, mut warnings) = checked_config(&body)?;
    warnings.extend(name_warnings.iter().map(|warning| json!(warning)));

    let reference = PipelineRef { name: pipeline_name, instance_vars: instance_vars::from_query(uri.query())? };
    let saved = state.db.save_pipeline(team.id, &reference, &spec, expected_version, true).await?;
    state.db.notify(crate::db::Channel::Checker, "").await?;
    state.db.notify(crate::db::Channel::Scheduler, "").await?;
    let status = if saved.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({ "warnings": warnings }))).into_response())
}

/// A configuration as a save receives it, parsed, validated and split the
/// way it is stored, with its warnings; 400 with every error it has.
pub(crate) fn checked_config(body: &[u8]) -> ApiResult<(PipelineSpec, Vec<Value>)> {
    let pipeline = config::parse(body).map_err(|err| ApiError::bad_request(format!("malformed config: {err}")))?;
    let validation = config::validate(&pipeline);
    if !validation.errors.is_empty() {
        return Err(ApiError::BadRequest(validation.errors));
    }
    let size_errors =
        compile::size_errors(&serde_json::to_value(&pipeline).map_err(|e| ApiError::Internal(e.to_string()))?);
    if !size_errors.is_empty() {
        return Err(ApiError::BadRequest(size_errors));
    }
    let warnings = validation.warnings.iter().map(|w| json!({ "type": w.kind, "message": w.message })).collect();
    let spec = config::storage_spec(&pipeline).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((spec, warnings))
}

/// The `X-Concourse-Config-Version` a save expects to replace. `fly` sends
/// the header empty for a new pipeline; like Concourse, empty means absent.
pub(crate) fn expected_config_version(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get(CONFIG_VERSION_HEADER) else { return Ok(None) };
    let malformed = || ApiError::bad_request("config version is malformed: expected an integer");
    let text = value.to_str().map_err(|_| malformed())?.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>().map(Some).map_err(|_| malformed())
}

pub(crate) fn require_config_media_type(headers: &HeaderMap) -> ApiResult<()> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media_type.as_str() {
        "application/json" | "application/x-yaml" | "application/yaml" | "text/yaml" => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be application/json or application/x-yaml, not '{content_type}'"
        ))),
    }
}
