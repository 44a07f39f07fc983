//! Build listings with Concourse's pagination: `from`/`to`/`limit` query
//! parameters and `Link` headers pointing at the next and previous pages.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::Uri;
use axum::response::Response;

use super::AppState;
use super::access::{BuildScope, Caller, PipelineScope, TeamScope};
use super::error::{ApiError, ApiResult};
use super::instance_vars::form_pairs;
use super::json_array::json_array;
use super::text_limits::{MAX_COMMENT_BYTES, check_length};
use super::{pagination, present};
use crate::db::{BuildFilter, BuildStatus, Page};
use crate::engine::plan::MAX_STEP_DEPTH;

async fn list(state: &AppState, filter: BuildFilter, uri: &Uri) -> ApiResult<Response> {
    let query = pagination::page_query(uri)?;
    if form_pairs(uri.query().unwrap_or("")).iter().any(|(key, _)| key == "timestamps") {
        return Err(ApiError::bad_request(
            "paginating builds by timestamps is not supported; use build ids in 'from' and 'to'",
        ));
    }
    let page = Page { from: query.from, to: query.to, limit: query.limit };
    let result = state.db.builds(&filter, page).await?;
    let (older, newer) = (result.older.and_then(|p| p.to), result.newer.and_then(|p| p.from));
    let mut response = json_array(result.builds, |build| present::build(&build));
    let base = format!("{}{}", state.settings.external_url, uri.path());
    pagination::add_links(&mut response, &base, older, newer, page.limit, "");
    Ok(response)
}

/// Every build the caller may see.
pub async fn list_builds(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
) -> ApiResult<Response> {
    let filter = if caller.access.is_admin {
        BuildFilter::All
    } else {
        BuildFilter::VisibleTo(caller.access.team_roles.keys().cloned().collect())
    };
    list(&state, filter, &uri).await
}

pub async fn list_team_builds(
    State(state): State<AppState>,
    Extension(TeamScope(team)): Extension<TeamScope>,
    uri: Uri,
) -> ApiResult<Response> {
    list(&state, BuildFilter::Team(team.id), &uri).await
}

pub async fn list_pipeline_builds(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    uri: Uri,
) -> ApiResult<Response> {
    list(&state, BuildFilter::Pipeline(scope.pipeline.id), &uri).await
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
    list(&state, BuildFilter::Job(job.id), &uri).await
}

pub async fn get_build(Extension(BuildScope(build)): Extension<BuildScope>) -> Json<present::Build> {
    Json(present::build(&build))
}

pub async fn get_build_plan(
    State(state): State<AppState>,
    Extension(BuildScope(build)): Extension<BuildScope>,
) -> ApiResult<Json<serde_json::Value>> {
    let plan = state
        .db
        .public_build_plan(build.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("plan of build {}", build.id)))?;
    Ok(Json(serde_json::json!({ "schema": "exec.v2", "plan": plan })))
}

/// `fly`'s and the UI's "waiting for": what keeps a pending build from starting.
pub async fn get_build_preparation(
    State(state): State<AppState>,
    Extension(BuildScope(build)): Extension<BuildScope>,
) -> ApiResult<Json<serde_json::Value>> {
    let prepared = crate::scheduler::preparation::preparation(&state.db, &build).await?;
    let status = |blocking: bool| if blocking { "blocking" } else { "not_blocking" };
    Ok(Json(serde_json::json!({
        "build_id": prepared.build_id,
        "paused_pipeline": status(prepared.paused_pipeline),
        "paused_job": status(prepared.paused_job),
        "max_running_builds": status(prepared.max_running_builds),
        "inputs": prepared.inputs.iter().map(|(name, blocking)| (name.clone(), status(*blocking).into())).collect::<serde_json::Map<_, _>>(),
        "inputs_satisfied": status(prepared.unsatisfied_inputs),
        "missing_input_reasons": prepared.missing_input_reasons,
    })))
}

/// Stops a build: a pending one ends at once, a running one is stopped
/// (its `on_abort` and `ensure` hooks still run) by whichever node runs it.
pub async fn abort_build(
    State(state): State<AppState>,
    Extension(BuildScope(build)): Extension<BuildScope>,
) -> ApiResult<axum::http::StatusCode> {
    if build.completed {
        return Ok(axum::http::StatusCode::OK);
    }
    state.db.request_abort(build.id).await?;
    if crate::engine::runner::end_unstarted(&state.db, &build, BuildStatus::Aborted, None).await? {
        // It never ran: watchers here learn at once that it ended.
        state.engine.hub.publish(build.id, crate::engine::event_hub::HubMessage::Finished);
    } else {
        state.db.notify(crate::db::Channel::BuildAbort, &build.id.to_string()).await?;
    }
    Ok(axum::http::StatusCode::OK)
}

#[derive(serde::Deserialize)]
pub struct CommentBody {
    comment: String,
}

pub async fn set_build_comment(
    State(state): State<AppState>,
    Extension(BuildScope(build)): Extension<BuildScope>,
    super::body::JsonBody(body): super::body::JsonBody<CommentBody>,
) -> ApiResult<axum::http::StatusCode> {
    check_length("comment", &body.comment, MAX_COMMENT_BYTES)?;
    state.db.set_build_comment(build.id, &body.comment).await?;
    Ok(axum::http::StatusCode::OK)
}

/// `fly execute`: a one-off build of the plan in the body, started at once.
pub async fn create_one_off_build(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(TeamScope(team)): Extension<TeamScope>,
    pipeline: Option<Extension<PipelineScope>>,
    super::body::JsonBody(plan): super::body::JsonBody<crate::engine::plan::Plan, { super::body::MAX_CONFIG_BYTES }>,
) -> ApiResult<(axum::http::StatusCode, Json<present::Build>)> {
    let plan = one_off_plan(plan)?;
    let id = state
        .db
        .create_one_off_build(crate::db::NewBuild {
            team_id: team.id,
            pipeline_id: pipeline.map(|Extension(scope)| scope.pipeline.id),
            created_by: Some(caller.access.display_name().to_string()).filter(|n| !n.is_empty()),
            plan: Some(plan),
            span_context: super::jobs::request_span_context(),
            ..Default::default()
        })
        .await?;
    state.db.notify(crate::db::Channel::BuildTracker, &id.to_string()).await?;
    let build = find_created_build(&state, id).await?;
    Ok((axum::http::StatusCode::CREATED, Json(present::build(&build))))
}

/// A `fly execute` plan as it is stored: 400 when its steps nest too deep.
pub(crate) fn one_off_plan(plan: crate::engine::plan::Plan) -> ApiResult<crate::db::BuildPlan> {
    // Its JSON nests at most as deep as parsing allowed; its steps may not
    // all the same (`across` substeps are stored as text).
    if plan.step_depth() > MAX_STEP_DEPTH {
        return Err(ApiError::bad_request(format!("the plan's steps nest more than {MAX_STEP_DEPTH} deep")));
    }
    Ok(crate::db::BuildPlan::new(plan))
}

/// A build this request just created; gone only if its team or pipeline
/// was deleted since, which is the caller's race, not a fault.
pub(super) async fn find_created_build(state: &AppState, id: i64) -> ApiResult<crate::db::Build> {
    state.db.find_build(id).await?.ok_or_else(|| ApiError::not_found(format!("build {id}")))
}

/// The versions a build used and produced.
pub async fn build_resources(
    State(state): State<AppState>,
    Extension(BuildScope(build)): Extension<BuildScope>,
) -> ApiResult<Json<serde_json::Value>> {
    let inputs: Vec<serde_json::Value> = state
        .db
        .build_inputs(build.id)
        .await?
        .iter()
        .map(|input| {
            serde_json::json!({
                "name": input.name,
                "version": input.version,
                "pipeline_id": build.pipeline_id.unwrap_or(0),
                "first_occurrence": input.first_occurrence,
            })
        })
        .collect();
    let outputs: Vec<serde_json::Value> = state
        .db
        .build_outputs(build.id)
        .await?
        .iter()
        .map(|output| serde_json::json!({ "name": output.name, "version": output.version }))
        .collect();
    Ok(Json(serde_json::json!({ "inputs": inputs, "outputs": outputs })))
}
