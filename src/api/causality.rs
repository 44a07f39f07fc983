//! How a version flowed through the pipeline: `V/downstream` and
//! `V/upstream` (the web UI's causality view), and `P/versions-db` (the
//! scheduler's whole graph, for debugging), in Concourse's shapes.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Extension, Path, State};
use serde_json::{Value, json};

use super::AppState;
use super::access::PipelineScope;
use super::error::{ApiError, ApiResult};
use crate::db::{
    CAUSALITY_MAX_BUILDS, CAUSALITY_MAX_EDGES, CausalityBuild, CausalityDirection, CausalityEdge, FlowEntry,
    VersionOwner,
};

pub async fn downstream(
    state: State<AppState>,
    scope: Extension<PipelineScope>,
    path: Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    causality(state, scope, path, CausalityDirection::Downstream).await
}

pub async fn upstream(
    state: State<AppState>,
    scope: Extension<PipelineScope>,
    path: Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    causality(state, scope, path, CausalityDirection::Upstream).await
}

async fn causality(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
    Path((_, _, resource_name, version_id)): Path<(String, String, String, String)>,
    direction: CausalityDirection,
) -> ApiResult<Json<Value>> {
    let resource = state
        .db
        .find_resource(scope.pipeline.id, &resource_name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("resource '{resource_name}'")))?;
    let id: i64 =
        version_id.parse().map_err(|_| ApiError::bad_request(format!("'{version_id}' is not a version id")))?;
    let version = state
        .db
        .find_version(VersionOwner::Resource(resource.id), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("version {id} of resource '{resource_name}'")))?;
    let builds = state.db.causality_builds(resource.id, version.id, direction).await?;
    if builds.len() as i64 > CAUSALITY_MAX_BUILDS {
        return Err(ApiError::bad_request(format!("too many builds to show (more than {CAUSALITY_MAX_BUILDS})")));
    }
    let edges = state.db.causality_edges(resource.id, version.id, direction).await?;
    if edges.len() as i64 > CAUSALITY_MAX_EDGES {
        return Err(ApiError::bad_request(format!(
            "too many resource versions to show (more than {CAUSALITY_MAX_EDGES} inputs and outputs)"
        )));
    }
    Ok(Json(graph(resource.id, &builds, &edges, direction)))
}

#[derive(Default)]
struct Node {
    name: String,
    children: BTreeSet<i64>,
}

/// The graph as Concourse draws it: versions lead to the builds that used
/// them and builds to the versions they put (downstream), or the reverse.
/// Only resources reached through a build stay, besides the root's.
fn graph(root: i64, builds: &[CausalityBuild], edges: &[CausalityEdge], direction: CausalityDirection) -> Value {
    let known: BTreeMap<i64, &CausalityBuild> = builds.iter().map(|b| (b.id, b)).collect();
    let mut jobs: BTreeMap<i64, Node> = BTreeMap::new();
    for build in builds {
        let job = jobs.entry(build.job_id).or_default();
        job.name.clone_from(&build.job_name);
        job.children.insert(build.id);
    }
    let mut build_versions: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    let mut version_builds: BTreeMap<i64, (i64, Value, BTreeSet<i64>)> = BTreeMap::new();
    let mut resources: BTreeMap<i64, Node> = BTreeMap::new();
    let mut reached: BTreeSet<i64> = BTreeSet::from([root]);
    for edge in edges.iter().filter(|e| known.contains_key(&e.build_id)) {
        let resource = resources.entry(edge.resource_id).or_default();
        resource.name.clone_from(&edge.resource_name);
        resource.children.insert(edge.version_id);
        let version = version_builds
            .entry(edge.version_id)
            .or_insert_with(|| (edge.resource_id, edge.version.clone(), BTreeSet::new()));
        // Downstream, inputs lead to builds; upstream, outputs do.
        if edge.is_input == (direction == CausalityDirection::Downstream) {
            version.2.insert(edge.build_id);
        } else {
            build_versions.entry(edge.build_id).or_default().insert(edge.version_id);
            reached.insert(edge.resource_id);
        }
    }
    let kept_version = |id: &i64| version_builds.get(id).is_some_and(|(resource, _, _)| reached.contains(resource));
    let ids = |set: &BTreeSet<i64>| -> Vec<i64> { set.iter().copied().collect() };
    json!({
        "jobs": jobs.iter().map(|(id, job)| json!({ "id": id, "name": job.name, "build_ids": ids(&job.children) })).collect::<Vec<_>>(),
        "builds": builds.iter().map(|build| {
            let mut presented = json!({ "id": build.id, "name": build.name, "job_id": build.job_id, "status": build.status });
            let versions: Vec<i64> = build_versions.get(&build.id).into_iter().flatten().filter(|v| kept_version(v)).copied().collect();
            if !versions.is_empty() {
                presented["resource_version_ids"] = json!(versions);
            }
            presented
        }).collect::<Vec<_>>(),
        "resources": resources.iter().filter(|(id, _)| reached.contains(id)).map(|(id, resource)| {
            json!({ "id": id, "name": resource.name, "version_ids": ids(&resource.children) })
        }).collect::<Vec<_>>(),
        "resource_versions": version_builds.iter().filter(|(id, _)| kept_version(id)).map(|(id, (resource, version, builds))| {
            let mut presented = json!({ "id": id, "resource_id": resource, "version": version });
            if !builds.is_empty() {
                presented["build_ids"] = json!(ids(builds));
            }
            presented
        }).collect::<Vec<_>>(),
    })
}

fn flow(entry: &FlowEntry, with_name: bool) -> Value {
    let mut presented = json!({
        "VersionID": entry.version_id,
        "ResourceID": entry.resource_id,
        "CheckOrder": entry.check_order,
        // Every resource has a history of its own: its scope is itself.
        "ScopeID": entry.resource_id,
        "BuildID": entry.build_id,
        "JobID": entry.job_id,
    });
    if with_name {
        presented["InputName"] = json!(entry.name);
    }
    presented
}

/// `GET P/versions-db`: Concourse's debugging dump of the scheduler's view.
pub async fn versions_db(
    State(state): State<AppState>,
    Extension(scope): Extension<PipelineScope>,
) -> ApiResult<Json<Value>> {
    let db = state.db.versions_db(scope.pipeline.id).await?;
    Ok(Json(json!({
        "Jobs": db.jobs.iter().map(|(name, id)| json!({ "Name": name, "ID": id })).collect::<Vec<_>>(),
        "Resources": db.resources.iter().map(|(name, id)| json!({ "Name": name, "ID": id, "ScopeID": id })).collect::<Vec<_>>(),
        "ResourceVersions": db.versions.iter().map(|v| json!({
            "VersionID": v.version_id, "ResourceID": v.resource_id, "CheckOrder": v.check_order, "ScopeID": v.resource_id,
        })).collect::<Vec<_>>(),
        "BuildOutputs": db.build_outputs.iter().map(|o| flow(o, false)).collect::<Vec<_>>(),
        "BuildInputs": db.build_inputs.iter().map(|i| flow(i, true)).collect::<Vec<_>>(),
        "BuildReruns": db.reruns.iter().map(|(job, build, of)| json!({ "BuildID": build, "JobID": job, "RerunOf": of })).collect::<Vec<_>>(),
    })))
}
