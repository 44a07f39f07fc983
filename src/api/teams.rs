//! Teams: list, get, set (create or change auth), rename, destroy, and the
//! team's builds.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::access::{Caller, TeamScope};
use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::names::validate_name;
use super::present;
use crate::auth::{Role, roles::MAIN_TEAM};
use crate::db::TeamAuth;

/// Teams the caller holds a role on (every team for admins).
pub async fn list_teams(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<present::Team>>> {
    let teams = state.db.list_teams().await?;
    Ok(Json(teams.iter().filter(|team| caller.access.has_role(&team.name, Role::Viewer)).map(present::team).collect()))
}

pub async fn get_team(Extension(TeamScope(team)): Extension<TeamScope>) -> Json<present::Team> {
    Json(present::team(&team))
}

#[derive(Deserialize)]
pub struct SetTeamBody {
    #[serde(default)]
    auth: TeamAuth,
}

/// Creates a team (admins only) or replaces an existing team's auth (its owners).
pub async fn set_team(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(team_name): Path<String>,
    JsonBody(body): JsonBody<SetTeamBody>,
) -> ApiResult<Response> {
    validate_auth(&body.auth)?;
    let mut warnings = Vec::new();
    let exists = state.db.find_team(&team_name).await?.is_some();
    if !exists {
        if !caller.access.is_admin {
            return Err(ApiError::Forbidden);
        }
        warnings.extend(validate_name("team", &team_name)?);
    }
    let (team, created) = state.db.save_team(&team_name, &body.auth).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let mut response = json!({ "team": present::team(&team) });
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    Ok((status, Json(response)).into_response())
}

/// Every role must be a known one and name at least one user or group.
fn validate_auth(auth: &TeamAuth) -> ApiResult<()> {
    if auth.is_empty() {
        return Err(ApiError::bad_request("auth must give at least one role to a user or group"));
    }
    let mut errors = Vec::new();
    for (role, members) in auth {
        if Role::from_name(role).is_none() {
            errors.push(format!("unknown role '{role}': expected owner, member, pipeline-operator or viewer"));
        } else if members.users.is_empty() && members.groups.is_empty() {
            errors.push(format!("role '{role}' has no users and no groups"));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::BadRequest(errors)) }
}

#[derive(Deserialize)]
pub struct RenameBody {
    name: String,
}

pub async fn rename_team(
    State(state): State<AppState>,
    Extension(TeamScope(team)): Extension<TeamScope>,
    JsonBody(body): JsonBody<RenameBody>,
) -> ApiResult<Json<serde_json::Value>> {
    if team.name == MAIN_TEAM {
        return Err(ApiError::bad_request("the main team cannot be renamed"));
    }
    let warnings = validate_name("team", &body.name)?;
    state.db.rename_team(&team.name, &body.name).await?;
    Ok(Json(json!({ "warnings": warnings })))
}

pub async fn destroy_team(
    State(state): State<AppState>,
    Extension(TeamScope(team)): Extension<TeamScope>,
) -> ApiResult<StatusCode> {
    if team.name == MAIN_TEAM {
        return Err(ApiError::Forbidden);
    }
    state.db.delete_team(&team.name).await?;
    Ok(StatusCode::NO_CONTENT)
}
