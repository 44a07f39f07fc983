//! Jobs: list (pipeline and all), get, pause, unpause.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::access::{Caller, PipelineScope};
use super::error::{ApiError, ApiResult};
use super::present;
use crate::auth::Role;
use crate::db::{Channel, Job, NewBuild, Pipeline};

/// The request's span, kept with a build it creates: the build's span
/// becomes its child.
pub(super) fn request_span_context() -> Option<String> {
    crate::telemetry::propagation::stored_context(&crate::telemetry::current_context())
}

async fn present_job(state: &AppState, pipeline: &Pipeline, job: &Job) -> ApiResult<present::Job> {
    let (inputs, outputs) = inputs_and_outputs(&job.definition);
    let (next, finished, transition) = state.db.job_build_summary(job.id).await?;
    let mut presented = present::job(pipeline, job, inputs, outputs);
    presented.next_build = next.as_ref().map(present::build);
    presented.finished_build = finished.as_ref().map(present::build);
    presented.transition_build = transition.as_ref().map(present::build);
    Ok(presented)
}

/// The job's gets and puts as the API lists them.
fn inputs_and_outputs(job: &crate::config::Job) -> (Vec<present::JobInput>, Vec<present::JobOutput>) {
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
    let mut presented = Vec::new();
    for job in state.db.pipeline_jobs(scope.pipeline.id).await? {
        presented.push(present_job(&state, &scope.pipeline, &job).await?);
    }
    Ok(Json(presented))
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
            all.push(present_job(&state, &pipeline, &job).await?);
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
    Ok(Json(present_job(&state, &scope.pipeline, &job).await?))
}

/// `fly`'s and the UI's view of what the job's next build would get: the
/// inputs the scheduler last resolved. 404 until it could resolve them.
pub async fn list_job_inputs(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, job_name)): Path<(String, String, String)>,
) -> ApiResult<Json<Vec<present::NextBuildInput>>> {
    let job = find_job(&state, &scope, &job_name).await?;
    let (next, error) = state.db.next_inputs(job.id).await?;
    let configs = job.definition.inputs();
    if next.is_empty() && !configs.is_empty() {
        let why = error.map(|e| format!(" ({e})")).unwrap_or_default();
        return Err(ApiError::not_found(format!("next inputs of job '{job_name}'{why}")));
    }
    let resources = state.db.pipeline_resources(scope.pipeline.id).await?;
    let mut inputs = Vec::with_capacity(next.len());
    for input in next {
        let config = configs.iter().find(|c| c.name == input.name);
        let resource = resources.iter().find(|r| r.id == input.resource_id);
        let version = state.db.version_json(input.version_id).await?;
        let resource_config = resource.map(|r| &r.config);
        inputs.push(present::NextBuildInput {
            name: input.name,
            resource: resource.map(|r| r.name.clone()).unwrap_or_default(),
            type_: resource_config.and_then(|c| c["type"].as_str()).unwrap_or_default().to_string(),
            source: resource_config.and_then(|c| c.get("source")).cloned().unwrap_or(serde_json::json!({})),
            params: config.and_then(|c| c.params.clone()),
            version: version.unwrap_or_default(),
            tags: config.map(|c| c.tags.clone()).unwrap_or_default(),
        });
    }
    Ok(Json(inputs))
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
    state.db.notify(Channel::Scheduler, &job.id.to_string()).await?;
    Ok(StatusCode::OK)
}

/// `fly trigger-job`: a new pending build the scheduler starts with the
/// job's latest inputs.
pub async fn create_job_build(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, job_name)): Path<(String, String, String)>,
) -> ApiResult<Json<present::Build>> {
    let job = find_job(&state, &scope, &job_name).await?;
    if job.disable_manual_trigger {
        return Err(ApiError::Conflict(format!("job '{job_name}' has manual triggering disabled")));
    }
    let number = state.db.next_build_number(job.id).await?;
    let id = state
        .db
        .create_build(&NewBuild {
            team_id: scope.team.id,
            pipeline_id: Some(scope.pipeline.id),
            job_id: Some(job.id),
            name: number.to_string(),
            manually_triggered: true,
            created_by: Some(caller.access.display_name().to_string()).filter(|n| !n.is_empty()),
            span_context: request_span_context(),
            ..NewBuild::default()
        })
        .await?;
    state.db.request_schedule(job.id).await?;
    state.db.notify(Channel::Scheduler, &job.id.to_string()).await?;
    let build = super::builds::find_created_build(&state, id).await?;
    Ok(Json(present::build(&build)))
}

pub async fn get_job_build(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, job_name, build_name)): Path<(String, String, String, String)>,
) -> ApiResult<Json<present::Build>> {
    let job = find_job(&state, &scope, &job_name).await?;
    let build = state
        .db
        .find_job_build(job.id, &build_name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("build {build_name} of job '{job_name}'")))?;
    Ok(Json(present::build(&build)))
}

/// Runs a build again with exactly the inputs it had.
pub async fn rerun_job_build(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, job_name, build_name)): Path<(String, String, String, String)>,
) -> ApiResult<Json<present::Build>> {
    let job = find_job(&state, &scope, &job_name).await?;
    let original = state
        .db
        .find_job_build(job.id, &build_name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("build {build_name} of job '{job_name}'")))?;
    let created_by = Some(caller.access.display_name()).filter(|n| !n.is_empty());
    let id = state.db.create_rerun(&original, created_by, request_span_context().as_deref()).await?;
    state.db.notify(Channel::Scheduler, &job.id.to_string()).await?;
    let build = super::builds::find_created_build(&state, id).await?;
    Ok(Json(present::build(&build)))
}

/// Asks the scheduler to look at the job now.
pub async fn schedule_job(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, job_name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let job = find_job(&state, &scope, &job_name).await?;
    state.db.request_schedule(job.id).await?;
    state.db.notify(Channel::Scheduler, &job.id.to_string()).await?;
    Ok(StatusCode::OK)
}
