//! `GET /api/v1/user` (who am I) and `GET /api/v1/users` (recent logins).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::Uri;
use serde_json::{Value, json};

use super::AppState;
use super::access::Caller;
use super::error::{ApiError, ApiResult};
use super::instance_vars::form_pairs;

pub async fn get_user(Extension(caller): Extension<Caller>) -> ApiResult<Json<Value>> {
    let access = caller.access;
    let user = access.user.as_ref().ok_or(ApiError::Unauthorized)?;
    let teams: BTreeMap<&str, Vec<&str>> =
        access.team_roles.iter().map(|(team, role)| (team.as_str(), vec![role.name()])).collect();
    Ok(Json(json!({
        "sub": user.sub,
        "name": user.username,
        "user_id": user.username,
        "user_name": user.username,
        "email": "",
        "is_admin": access.is_admin,
        "is_system": false,
        "teams": teams,
        "connector": user.connector,
        "display_user_id": user.username,
    })))
}

/// Users who logged in since `since` (`YYYY-MM-DD`), by default the last two months.
pub async fn list_active_users(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<Value>> {
    let since = form_pairs(uri.query().unwrap_or(""))
        .into_iter()
        .find(|(key, _)| key == "since")
        .map(|(_, value)| {
            crate::clock::parse_date(&value)
                .ok_or_else(|| ApiError::bad_request(format!("'since' must be a date as YYYY-MM-DD, got '{value}'")))
        })
        .transpose()?
        .unwrap_or_else(|| crate::db::now() - 60 * 24 * 3600);
    let users = state.db.users_active_since(since).await?;
    Ok(Json(json!(
        users
            .iter()
            .map(|u| json!({
                "id": u.id,
                "username": u.username,
                "connector": u.connector,
                "last_login": u.last_login,
            }))
            .collect::<Vec<_>>()
    )))
}
