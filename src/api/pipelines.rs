//! Pipelines: list, get, delete, pause, unpause, expose, hide, rename,
//! order (a team's groups, and the instances within a group), archive.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::access::{Caller, PipelineScope, TeamScope};
use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::instance_vars;
use super::names::validate_name;
use super::present;
use crate::auth::Role;
use crate::db::Pipeline;

/// Pipelines visible to the caller: all of their teams' and public ones.
pub async fn list_all_pipelines(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<present::Pipeline>>> {
    let pipelines = state.db.all_pipelines().await?;
    Ok(Json(visible(&caller, &pipelines)))
}

/// A team's pipelines the caller may see; none of a team they cannot know.
pub async fn list_team_pipelines(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    team: Option<Extension<TeamScope>>,
) -> ApiResult<Json<Vec<present::Pipeline>>> {
    let Some(Extension(TeamScope(team))) = team else { return Ok(Json(Vec::new())) };
    let pipelines = state.db.team_pipelines(&team.name).await?;
    Ok(Json(visible(&caller, &pipelines)))
}

fn visible(caller: &Caller, pipelines: &[Pipeline]) -> Vec<present::Pipeline> {
    pipelines
        .iter()
        .filter(|p| p.public || caller.access.has_role(&p.team_name, Role::Viewer))
        .map(present::pipeline)
        .collect()
}

pub async fn get_pipeline(Extension(scope): Extension<PipelineScope>) -> Json<present::Pipeline> {
    Json(present::pipeline(&scope.pipeline))
}

pub async fn delete_pipeline(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
) -> ApiResult<StatusCode> {
    state.db.delete_pipeline(scope.pipeline.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pause_pipeline(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(scope): Extension<PipelineScope>,
) -> ApiResult<StatusCode> {
    state.db.pause_pipeline(scope.pipeline.id, caller.access.display_name()).await?;
    Ok(StatusCode::OK)
}

pub async fn unpause_pipeline(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
) -> ApiResult<StatusCode> {
    if scope.pipeline.archived {
        return Err(ApiError::Conflict(
            "an archived pipeline cannot be unpaused: set its configuration again to restore it".into(),
        ));
    }
    state.db.unpause_pipeline(scope.pipeline.id).await?;
    state.db.notify(crate::db::Channel::Checker, "").await?;
    state.db.notify(crate::db::Channel::Scheduler, "").await?;
    Ok(StatusCode::OK)
}

pub async fn expose_pipeline(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
) -> ApiResult<StatusCode> {
    state.db.set_pipeline_public(scope.pipeline.id, true).await?;
    Ok(StatusCode::OK)
}

pub async fn hide_pipeline(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
) -> ApiResult<StatusCode> {
    state.db.set_pipeline_public(scope.pipeline.id, false).await?;
    Ok(StatusCode::OK)
}

pub async fn archive_pipeline(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(scope): Extension<PipelineScope>,
) -> ApiResult<StatusCode> {
    state.db.archive_pipeline(scope.pipeline.id, caller.access.display_name()).await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
pub struct RenameBody {
    name: String,
}

/// Renames pipeline `{pipeline_name}` and, when it names an instance group,
/// every instance in it (`fly rename-pipeline`): only the team is resolved.
pub async fn rename_pipeline(
    State(state): State<AppState>,
    Extension(TeamScope(team)): Extension<TeamScope>,
    Path((_, group)): Path<(String, String)>,
    JsonBody(body): JsonBody<RenameBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let warnings = validate_name("pipeline", &body.name)?;
    if state.db.rename_pipeline_group(team.id, &group, &body.name).await? == 0 {
        return Err(ApiError::not_found(format!("pipeline '{group}'")));
    }
    Ok(Json(json!({ "warnings": warnings })))
}

/// Body: the pipeline names in their new order (`fly order-pipelines`).
pub async fn order_pipelines(
    State(state): State<AppState>,
    Extension(TeamScope(team)): Extension<TeamScope>,
    JsonBody(names): JsonBody<Vec<String>>,
) -> ApiResult<StatusCode> {
    let unknown = state.db.order_pipelines(team.id, &names).await?;
    if !unknown.is_empty() {
        return Err(ApiError::BadRequest(unknown.iter().map(|name| format!("pipeline '{name}' not found")).collect()));
    }
    Ok(StatusCode::OK)
}

/// Body: the instance vars of pipeline `{pipeline_name}`'s instances in
/// their new order, `{}` for the one without (`fly
/// order-instanced-pipelines`). The path names a group, which need not have
/// a pipeline without instance vars, so only the team is resolved.
pub async fn order_pipelines_within_group(
    State(state): State<AppState>,
    Extension(TeamScope(team)): Extension<TeamScope>,
    Path((_, group)): Path<(String, String)>,
    JsonBody(instances): JsonBody<Vec<Map<String, Value>>>,
) -> ApiResult<StatusCode> {
    let instances: Vec<String> = instances.into_iter().map(instance_vars::canonical).collect();
    let unknown = state.db.order_pipelines_within_group(team.id, &group, &instances).await?;
    if !unknown.is_empty() {
        // As Concourse answers: 400 with the not-found text.
        let named = |vars: &String| if vars.is_empty() { group.clone() } else { format!("{group}/{vars}") };
        return Err(ApiError::BadRequest(
            unknown.iter().map(|vars| format!("pipeline '{}' not found", named(vars))).collect(),
        ));
    }
    Ok(StatusCode::OK)
}
