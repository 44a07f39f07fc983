//! Jobs: list (pipeline and all), get, pause, unpause.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::access::{Caller, PipelineScope};
use super::error::{ApiError, ApiResult};
use super::present;
use crate::auth::Role;
use crate::db::{Job, Pipeline};

fn present_job(pipeline: &Pipeline, job: &Job) -> present::Job {
    let (inputs, outputs) = inputs_and_outputs(&job.config);
    present::job(pipeline, job, inputs, outputs)
}

/// The job's gets and puts as the API lists them.
fn inputs_and_outputs(config: &str) -> (Vec<present::JobInput>, Vec<present::JobOutput>) {
    let Some(job) = crate::config::parse_job_json(config) else {
        return (Vec::new(), Vec::new());
    };
    let inputs = job
        .inputs()
        .into_iter()
        .map(|input| present::JobInput {
            name: input.name,
            resource: input.resource,
            trigger: input.trigger,
            passed: input.passed,
        })
        .collect();
    let outputs = job
        .outputs()
        .into_iter()
        .map(|output| present::JobOutput { name: output.name, resource: output.resource })
        .collect();
    (inputs, outputs)
}

pub async fn list_jobs(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
) -> ApiResult<Json<Vec<present::Job>>> {
    let jobs = state.db.pipeline_jobs(scope.pipeline.id).await?;
    Ok(Json(jobs.iter().map(|job| present_job(&scope.pipeline, job)).collect()))
}

/// Jobs of every pipeline the caller can see.
pub async fn list_all_jobs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<present::Job>>> {
    let mut all = Vec::new();
    for pipeline in state.db.all_pipelines().await? {
        if !(pipeline.public || caller.access.has_role(&pipeline.team_name, Role::Viewer)) {
            continue;
        }
        for job in state.db.pipeline_jobs(pipeline.id).await? {
            all.push(present_job(&pipeline, &job));
        }
    }
    Ok(Json(all))
}

async fn find_job(state: &AppState, scope: &PipelineScope, name: &str) -> ApiResult<Job> {
    state.db.find_job(scope.pipeline.id, name).await?.ok_or_else(|| ApiError::not_found(format!("job '{name}'")))
}

pub async fn get_job(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, job_name)): Path<(String, String, String)>,
) -> ApiResult<Json<present::Job>> {
    let job = find_job(&state, &scope, &job_name).await?;
    Ok(Json(present_job(&scope.pipeline, &job)))
}

pub async fn pause_job(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, job_name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let job = find_job(&state, &scope, &job_name).await?;
    state.db.pause_job(job.id, caller.access.display_name()).await?;
    Ok(StatusCode::OK)
}

pub async fn unpause_job(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, job_name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let job = find_job(&state, &scope, &job_name).await?;
    state.db.unpause_job(job.id).await?;
    Ok(StatusCode::OK)
}
