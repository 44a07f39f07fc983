//! `GET /api/v1/teams/:team/cc.xml`: job statuses in the CCTray format that
//! desktop build monitors read.

use axum::extract::{Extension, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::access::{Caller, TeamScope};
use super::error::ApiResult;
use crate::auth::Role;

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

pub async fn get_cc(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    team: Option<Extension<TeamScope>>,
) -> ApiResult<Response> {
    let mut projects = String::new();
    // A team the caller cannot know has no projects for them.
    let Some(Extension(TeamScope(team))) = team else { return Ok(projects_xml(&projects)) };
    let authorized = caller.access.has_role(&team.name, Role::Viewer);
    for pipeline in state.db.team_pipelines(&team.name).await? {
        if !(authorized || pipeline.public) {
            continue;
        }
        for job in state.db.pipeline_jobs(pipeline.id).await? {
            let (next, finished, _) = state.db.job_build_summary(job.id).await?;
            let Some(finished) = finished else { continue };
            let status = match finished.status.as_str() {
                "succeeded" => "Success",
                "failed" => "Failure",
                _ => "Exception",
            };
            let activity = if next.is_some() { "Building" } else { "Sleeping" };
            let url = format!(
                "{}/teams/{}/pipelines/{}/jobs/{}",
                state.settings.external_url, team.name, pipeline.name, job.name
            );
            projects.push_str(&format!(
                "<Project activity=\"{activity}\" lastBuildLabel=\"{}\" lastBuildStatus=\"{status}\" lastBuildTime=\"{}\" name=\"{}\" webUrl=\"{}\"></Project>",
                xml_escape(&finished.name),
                crate::clock::rfc3339(finished.end_time.unwrap_or(0)),
                xml_escape(&format!("{}/{}", pipeline.name, job.name)),
                xml_escape(&url),
            ));
        }
    }
    Ok(projects_xml(&projects))
}

fn projects_xml(projects: &str) -> Response {
    let mut response = format!("<Projects>{projects}</Projects>").into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}
