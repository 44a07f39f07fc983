//! Status badges (SVG) for READMEs: a job's last finished build, or the
//! worst among a pipeline's jobs; the main team's job badges also under
//! their pre-teams path.

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::access::PipelineScope;
use super::error::{ApiError, ApiResult};
use super::instance_vars::form_pairs;
use crate::auth::roles::MAIN_TEAM;

/// Label and colour for a build status; `None` is a job that never finished a build.
fn look(status: Option<&str>) -> (&'static str, &'static str) {
    match status {
        Some("succeeded") => ("passing", "#44cc11"),
        Some("failed") => ("failing", "#e05d44"),
        Some("errored") => ("errored", "#fe7d37"),
        Some("aborted") => ("aborted", "#8f4b2d"),
        _ => ("unknown", "#9f9f9f"),
    }
}

/// How bad a status is, for a pipeline's badge.
fn severity(status: Option<&str>) -> u8 {
    match status {
        Some("succeeded") => 0,
        None => 1,
        Some("aborted") => 2,
        Some("errored") => 3,
        _ => 4,
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Roughly 6.5 px per character of the 11 px font, plus padding.
fn text_width(text: &str) -> usize {
    text.chars().count() * 13 / 2 + 10
}

fn badge(title: &str, status: Option<&str>) -> Response {
    let (label, colour) = look(status);
    let title = escape(title);
    let (left, right) = (text_width(&title), text_width(label));
    let width = left + right;
    let svg = format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{title}: {label}">
  <rect width="{width}" height="20" rx="3" fill="#555"/>
  <rect x="{left}" width="{right}" height="20" rx="3" fill="{colour}"/>
  <rect x="{left}" width="4" height="20" fill="{colour}"/>
  <g fill="#fff" text-anchor="middle" font-family="DejaVu Sans,Verdana,Geneva,sans-serif" font-size="11">
    <text x="{title_x}" y="14">{title}</text>
    <text x="{label_x}" y="14">{label}</text>
  </g>
</svg>
"##,
        title_x = left / 2,
        label_x = left + right / 2,
    );
    let mut response = svg.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    response
}

fn title(uri: &Uri) -> String {
    form_pairs(uri.query().unwrap_or(""))
        .into_iter()
        .find(|(key, _)| key == "title")
        .map(|(_, title)| title)
        .unwrap_or_else(|| "build".to_string())
}

pub async fn job_badge(
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
    let (_, finished, _) = state.db.job_build_summary(job.id).await?;
    Ok(badge(&title(&uri), finished.as_ref().map(|b| b.status.as_str())))
}

pub async fn pipeline_badge(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    uri: Uri,
) -> ApiResult<Response> {
    let mut worst: Option<Option<&'static str>> = None;
    for job in state.db.pipeline_jobs(scope.pipeline.id).await? {
        let (_, finished, _) = state.db.job_build_summary(job.id).await?;
        let status = finished.map(|b| b.status.as_str());
        if worst.is_none_or(|w| severity(status) > severity(w)) {
            worst = Some(status);
        }
    }
    Ok(badge(&title(&uri), worst.flatten()))
}

/// `GET /api/v1/pipelines/{pipeline}/jobs/{job}/badge`: the badge of a
/// job of the main team's pipeline, where old READMEs point.
pub async fn main_job_badge(uri: Uri) -> ApiResult<Response> {
    // The path as sent, still percent-encoded, under the main team.
    let rest = uri
        .path()
        .strip_prefix("/api/v1/pipelines/")
        .ok_or_else(|| ApiError::Internal(format!("main job badge route matched {}", uri.path())))?;
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let location = format!("/api/v1/teams/{MAIN_TEAM}/pipelines/{rest}{query}");
    // 301, as Concourse answers: badge URLs are embedded in READMEs.
    Ok((StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, location)]).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_status_wins() {
        let mut statuses = [Some("succeeded"), Some("errored"), None, Some("failed"), Some("aborted")];
        statuses.sort_by_key(|s| severity(*s));
        assert_eq!(statuses.last().copied().flatten(), Some("failed"));
    }

    #[test]
    fn titles_are_escaped() {
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
