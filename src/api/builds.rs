//! Build listings with Concourse's pagination: `from`/`to`/`limit` query
//! parameters and `Link` headers pointing at the next and previous pages.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::access::{Caller, PipelineScope, TeamScope};
use super::error::{ApiError, ApiResult};
use super::instance_vars::form_pairs;
use super::present;
use crate::db::{BuildScope, Page};

pub const DEFAULT_PAGE_LIMIT: i64 = 100;

/// Reads `from`, `to` and `limit`; anything unparsable is a 400 naming it.
fn page_from_query(uri: &Uri) -> ApiResult<Page> {
    let mut page = Page { from: None, to: None, limit: DEFAULT_PAGE_LIMIT };
    for (key, value) in form_pairs(uri.query().unwrap_or("")) {
        let number =
            || {
                value.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    ApiError::bad_request(format!("'{key}' must be a non-negative integer, got '{value}'"))
                })
            };
        match key.as_str() {
            "from" => page.from = Some(number()?),
            "to" => page.to = Some(number()?),
            "limit" => page.limit = Some(number()?).filter(|n| *n > 0).unwrap_or(DEFAULT_PAGE_LIMIT),
            "timestamps" => {
                return Err(ApiError::bad_request(
                    "paginating builds by timestamps is not supported; use build ids in 'from' and 'to'",
                ));
            }
            _ => {}
        }
    }
    Ok(page)
}

async fn list(state: &AppState, scope: BuildScope, uri: &Uri) -> ApiResult<Response> {
    let page = page_from_query(uri)?;
    let result = state.db.builds(&scope, page).await?;
    let base = format!("{}{}", state.settings.external_url, uri.path());
    let builds: Vec<present::Build> = result.builds.iter().map(present::build).collect();
    let mut response = Json(builds).into_response();
    let links = [
        result.older.map(|p| format!("<{base}?to={}&limit={}>; rel=\"next\"", p.to.unwrap_or(0), p.limit)),
        result.newer.map(|p| format!("<{base}?from={}&limit={}>; rel=\"previous\"", p.from.unwrap_or(0), p.limit)),
    ];
    for link in links.into_iter().flatten() {
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().append(header::LINK, value);
        }
    }
    Ok(response)
}

/// Every build the caller may see.
pub async fn list_builds(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
) -> ApiResult<Response> {
    let scope = if caller.access.is_admin {
        BuildScope::All
    } else {
        BuildScope::VisibleTo(caller.access.team_roles.keys().cloned().collect())
    };
    list(&state, scope, &uri).await
}

pub async fn list_team_builds(
    State(state): State<AppState>,
    Extension(TeamScope(team)): Extension<TeamScope>,
    uri: Uri,
) -> ApiResult<Response> {
    list(&state, BuildScope::Team(team.id), &uri).await
}

pub async fn list_pipeline_builds(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    uri: Uri,
) -> ApiResult<Response> {
    list(&state, BuildScope::Pipeline(scope.pipeline.id), &uri).await
}

pub async fn list_job_builds(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, job_name)): Path<(String, String, String)>,
    uri: Uri,
) -> ApiResult<Response> {
    let job = state
        .db
        .find_job(scope.pipeline.id, &job_name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job '{job_name}'")))?;
    list(&state, BuildScope::Job(job.id), &uri).await
}
