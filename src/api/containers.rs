//! `fly containers` and `fly volumes`. The runtime has no containers: a
//! team's containers are the steps of its builds this node is running, as
//! the engine reports them; its volumes are its jobs' task caches.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::Uri;
use serde_json::{Map, Value, json};

use super::AppState;
use super::access::TeamScope;
use super::error::{ApiError, ApiResult};
use super::instance_vars::{self, form_pairs};
use crate::db::{Build, Team, task_cache_key};
use crate::runtime::StepInfo;

/// A running step as Concourse presents a container, with what the
/// database knows of its build.
fn present(step: &StepInfo, build: Option<&Build>) -> Value {
    let metadata = &step.metadata;
    let mut container = Map::new();
    let mut set = |key: &str, value: Value| {
        let empty = value.is_null() || value == json!("") || value == json!(0);
        if !empty {
            container.insert(key.to_string(), value);
        }
    };
    set("id", json!(step.handle.as_str()));
    set("worker_name", json!(step.worker));
    set("state", json!("created"));
    set("type", json!(metadata.step_type));
    // A check's container names its resource, a step's container its step.
    if metadata.step_type == "check" {
        set("resource_name", json!(metadata.step_name));
    } else {
        set("step_name", json!(metadata.step_name));
    }
    set("build_id", json!(metadata.build_id));
    set("build_name", json!(metadata.build_name));
    set("pipeline_name", json!(metadata.pipeline));
    set("job_name", json!(metadata.job));
    if let Some(build) = build {
        set("pipeline_id", json!(build.pipeline_id));
        set("job_id", json!(build.job_id));
        set("pipeline_instance_vars", build.pipeline_instance_vars.clone().unwrap_or(Value::Null));
    }
    // `id` and `worker_name` are never left out.
    container.entry("worker_name").or_insert(json!(""));
    Value::Object(container)
}

/// The team's running steps, presented.
async fn team_containers(state: &AppState, team: &Team) -> ApiResult<Vec<Value>> {
    let steps: Vec<StepInfo> = state
        .engine
        .steps()
        .await
        .map_err(|err| ApiError::Internal(format!("cannot list the runtime's steps: {err}")))?
        .into_iter()
        .filter(|step| step.metadata.team == team.name)
        .collect();
    let mut builds: HashMap<i64, Option<Build>> = HashMap::new();
    for id in steps.iter().filter_map(|step| step.metadata.build_id) {
        if let std::collections::hash_map::Entry::Vacant(entry) = builds.entry(id) {
            entry.insert(state.db.find_build(id).await?);
        }
    }
    Ok(steps
        .iter()
        .map(|step| present(step, step.metadata.build_id.and_then(|id| builds.get(&id)).and_then(Option::as_ref)))
        .collect())
}

/// The query's filters as they must appear in a container (as JSON values);
/// numeric ones must be numbers.
fn filters(uri: &Uri) -> ApiResult<Vec<(String, Value)>> {
    let mut wanted = Vec::new();
    for (key, value) in form_pairs(uri.query().unwrap_or("")) {
        match key.as_str() {
            "pipeline_id" | "job_id" | "build_id" => {
                let number: i64 =
                    value.parse().map_err(|_| ApiError::bad_request(format!("{key} '{value}' is not a number")))?;
                wanted.push((key, json!(number)));
            }
            "type" | "step_name" | "attempt" | "pipeline_name" | "job_name" | "build_name" | "resource_name" => {
                wanted.push((key, json!(value)));
            }
            _ => {}
        }
    }
    let vars = instance_vars::from_query(uri.query())?;
    if !vars.is_empty() {
        let vars: Value = serde_json::from_str(&vars).map_err(|e| ApiError::Internal(e.to_string()))?;
        wanted.push(("pipeline_instance_vars".into(), vars));
    }
    Ok(wanted)
}

/// `GET T/containers`, filtered by the query as `fly intercept` filters
/// (`type`, `pipeline_name`, `job_name`, `build_name`, `step_name`, ids).
pub async fn list_containers(
    State(state): State<AppState>,
    Extension(TeamScope(team)): Extension<TeamScope>,
    uri: Uri,
) -> ApiResult<Json<Vec<Value>>> {
    let wanted = filters(&uri)?;
    let containers = team_containers(&state, &team).await?;
    Ok(Json(
        containers
            .into_iter()
            .filter(|container| wanted.iter().all(|(key, value)| container.get(key) == Some(value)))
            .collect(),
    ))
}

pub async fn get_container(
    State(state): State<AppState>,
    Extension(TeamScope(team)): Extension<TeamScope>,
    Path((_, handle)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    team_containers(&state, &team)
        .await?
        .into_iter()
        .find(|container| container["id"] == handle.as_str())
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("container '{handle}'")))
}

/// `GET T/volumes`: the task caches of the team's jobs.
pub async fn list_volumes(
    State(state): State<AppState>,
    Extension(TeamScope(team)): Extension<TeamScope>,
) -> ApiResult<Json<Vec<Value>>> {
    let worker = state.engine.workers().await.into_iter().next().map(|w| w.name).unwrap_or_default();
    let caches = state.db.team_task_caches(team.id).await?;
    Ok(Json(
        caches
            .into_iter()
            .map(|cache| {
                json!({
                    "id": task_cache_key(cache.id),
                    "worker_name": worker,
                    "type": "task-cache",
                    "container_handle": "",
                    "path": cache.path,
                    "parent_handle": "",
                    "resource_type": null,
                    "base_resource_type": null,
                    "pipeline_id": cache.pipeline_id,
                    "pipeline_name": cache.pipeline_name,
                    "pipeline_instance_vars": cache.pipeline_instance_vars,
                    "job_name": cache.job_name,
                    "step_name": cache.step_name,
                })
            })
            .collect(),
    ))
}
