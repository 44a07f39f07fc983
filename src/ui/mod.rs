//! The web UI: server-rendered pages on Concourse's paths, with small plain
//! scripts for what changes while a page is open (dashboard statuses, live
//! build logs, the build timeline) and for actions. Pages read through the
//! public REST API ([`api`]) and scripts call it; the UI has no endpoint of
//! its own besides the pages and their assets.

mod api;
mod assets;
mod build;
mod dashboard;
mod graph;
mod job;
mod layout;
mod locator;
mod model;
mod page_error;
mod pipeline;
mod resource;
pub mod trace_link;
mod viewer;

use axum::Router;
use axum::routing::get;

pub use page_error::not_found;

use crate::api::AppState;

/// What the page handlers use: the API router to read through, and the
/// application state for the build's trace link.
#[derive(Clone)]
pub struct UiState {
    app: AppState,
    api: Router,
}

/// The pages, reading through `api` (the API router, with authentication).
pub fn routes<S: Clone + Send + Sync + 'static>(app: AppState, api: Router) -> Router<S> {
    const PIPELINE: &str = "/teams/{team_name}/pipelines/{pipeline_name}";
    Router::new()
        .route("/", get(dashboard::page))
        .route(PIPELINE, get(pipeline::page))
        .route(&format!("{PIPELINE}/jobs/{{job_name}}"), get(job::page))
        .route(&format!("{PIPELINE}/jobs/{{job_name}}/builds/{{build_name}}"), get(build::job_build_page))
        .route("/builds/{build_id}", get(build::page))
        .route(&format!("{PIPELINE}/resources/{{resource_name}}"), get(resource::page))
        .route("/public/{file}", get(assets::serve))
        .with_state(UiState { app, api })
}
