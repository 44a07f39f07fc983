//! The build page, at `/teams/T/pipelines/P/jobs/J/builds/N` and
//! `/builds/ID`: the plan as a tree of steps, filled in live by
//! `build.js` from the events route (logs, states, the timeline), with
//! abort, rerun, the comment and, with `--tracing-ui-url`, the trace link.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::UiState;
use super::api::segment;
use super::assets::BUILD_SCRIPT;
use super::layout::{self, Crumb, team_crumb};
use super::locator::PipelineLocator;
use super::model::{Build, BuildPlan};
use super::page_error::PageError;
use super::viewer::Viewer;

#[derive(Deserialize)]
pub struct JobBuildPath {
    team_name: String,
    pipeline_name: String,
    job_name: String,
    build_name: String,
}

pub async fn job_build_page(
    State(state): State<UiState>,
    viewer: Viewer,
    Path(path): Path<JobBuildPath>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let pipeline = PipelineLocator::from_page(&path.team_name, &path.pipeline_name, query.as_deref());
    let api = pipeline.job_api(&path.job_name, &format!("/builds/{}", segment(&path.build_name)));
    let build: Build = viewer.api.get(&api).await?;
    render(&state, viewer, build).await
}

pub async fn page(State(state): State<UiState>, viewer: Viewer, Path(id): Path<String>) -> Result<Response, PageError> {
    let id: i64 = id.parse().map_err(|_| PageError::NotFound)?;
    let build: Build = viewer.api.get(&format!("/api/v1/builds/{id}")).await?;
    render(&state, viewer, build).await
}

/// The link to the build's trace, when atc has a tracing UI and recorded
/// the build's trace. The API does not carry trace ids (Concourse's has
/// none), so the page reads the one the engine stored, for a build the
/// API has just shown this viewer.
async fn trace_link(state: &UiState, build: &Build) -> Result<Option<String>, PageError> {
    let Some(template) = &state.app.settings.trace_link else { return Ok(None) };
    let stored = state.app.db.build_span_context(build.id).await.map_err(|err| PageError::Failed(err.to_string()))?;
    Ok(stored.and_then(|context| template.link(&context)))
}

async fn render(state: &UiState, viewer: Viewer, build: Build) -> Result<Response, PageError> {
    let api = format!("/api/v1/builds/{}", build.id);
    let plan: Option<BuildPlan> = viewer.api.get_optional(&format!("{api}/plan")).await?;
    let trace = trace_link(state, &build).await?;
    let operates = viewer.operates(&build.team_name);
    // A job's build: its job and the pipeline (with its instance vars).
    let job = build.job_name.as_ref().zip(build.pipeline_name.as_ref()).map(|(job, pipeline)| {
        (job, PipelineLocator::new(&build.team_name, pipeline, build.pipeline_instance_vars.as_ref()))
    });
    let title = match &job {
        Some((job, _)) => format!("{job} #{}", build.name),
        None => format!("build #{}", build.name),
    };
    let main = html! {
        div.build #build data-build-id=(build.id) data-status=(build.status) data-start=(build.start_time) {
            div.toolbar {
                h1 { (title) " " span #build-status { (layout::status_badge(&build.status)) } }
                div.actions {
                    @if operates && build.is_running() {
                        button.button.danger #abort type="button" data-put={ (api) "/abort" } { "Abort" }
                    }
                    @if let (true, Some((job_name, pipeline))) = (operates, &job) {
                        button.button #rerun type="button"
                            data-post=(pipeline.job_api(job_name, &format!("/builds/{}", segment(&build.name))))
                            data-go=(pipeline.job_page(job_name, "/builds/{build}")) { "Rerun" }
                    }
                    @if let Some(link) = &trace {
                        a.button #trace href=(link) rel="noopener" target="_blank" { "Trace" }
                    }
                }
            }
            dl.facts {
                div { dt { "Started" } dd { (layout::time(build.start_time)) } }
                div { dt { "Finished" } dd #build-end { (layout::time(build.end_time)) } }
                div { dt { "Duration" } dd #build-duration { (layout::duration(build.start_time, build.end_time)) } }
                @if let Some(by) = &build.created_by { div { dt { "Triggered by" } dd { (by) } } }
                @if let Some(of) = &build.rerun_of { div { dt { "Rerun of" } dd { "#" (of.name) } } }
            }
            @if operates {
                form.comment #comment data-put-json={ (api) "/comment" } {
                    label for="comment-text" { "Comment" }
                    textarea #comment-text name="comment" rows="1" { (build.comment) }
                    button.button type="submit" { "Save comment" }
                }
            } @else if !build.comment.is_empty() {
                p.comment-text { (build.comment) }
            }
            section.timeline aria-labelledby="timeline-title" {
                h2 #timeline-title { "Timeline" }
                div #timeline role="list" { p.empty { "No step has started yet." } }
            }
            section aria-labelledby="steps-title" {
                div.steps-bar {
                    h2 #steps-title { "Steps" }
                    label { input #show-times type="checkbox"; " timestamps" }
                }
                div #steps {
                    @match &plan {
                        Some(plan) => (step(&plan.plan)),
                        None => p.empty #no-plan { "The plan is not available: the build has not started, or its logs are not public." },
                    }
                }
                p #build-error.error role="alert" hidden {}
            }
        }
    };
    let mut crumbs = vec![team_crumb(&build.team_name)];
    if let Some((job_name, pipeline)) = &job {
        crumbs.push(Crumb::link(pipeline.title(), pipeline.page("")));
        crumbs.push(Crumb::link(job_name.to_string(), pipeline.job_page(job_name, "")));
    }
    crumbs.push(Crumb::here(format!("#{}", build.name)));
    Ok(layout::page(&viewer, &title, &crumbs, main, &[BUILD_SCRIPT]))
}

/// Steps that run something and have a log: their kind and name.
fn leaf(plan: &Value) -> Option<(&'static str, String)> {
    ["get", "put", "task", "check", "set_pipeline", "load_var", "artifact_input", "artifact_output"]
        .into_iter()
        .find_map(|kind| {
            plan.get(kind).map(|body| (kind, body.get("name").and_then(Value::as_str).unwrap_or(kind).to_string()))
        })
}

/// One node of the public plan, as nested sections: steps with a log get
/// `data-origin` (their plan id, which events name), wrappers a label.
fn step(plan: &Value) -> Markup {
    let id = plan.get("id").and_then(Value::as_str).unwrap_or_default();
    if let Some((kind, name)) = leaf(plan) {
        let kind_label = kind.replace('_', " ");
        return html! {
            section.step data-origin=(id) data-name=(name) data-kind=(kind) {
                button.step-head type="button" aria-expanded="true" aria-controls={ "log-" (id) } {
                    span.step-kind { (kind_label) } " "
                    span.step-name { (name) }
                    span.step-state data-state="pending" { "pending" }
                }
                div.log id={ "log-" (id) } role="log" aria-label={ (kind_label) " " (name) " log" } tabindex="0" {}
            }
        };
    }
    let Some((key, body)) = plan.as_object().and_then(|o| o.iter().find(|(k, _)| k.as_str() != "id")) else {
        return html! {};
    };
    let children: Vec<(Option<&str>, &Value)> = match key.as_str() {
        "do" | "retry" => body.as_array().into_iter().flatten().map(|c| (None, c)).collect(),
        "in_parallel" => body.get("steps").and_then(Value::as_array).into_iter().flatten().map(|c| (None, c)).collect(),
        "on_success" | "on_failure" | "on_abort" | "on_error" | "ensure" => {
            let mut children = Vec::new();
            children.extend(body.get("step").map(|s| (None, s)));
            children.extend(body.get(key.as_str()).map(|s| (Some(key.as_str()), s)));
            children
        }
        "try" | "timeout" => body.get("step").map(|s| (None, s)).into_iter().collect(),
        // Across substeps are known only from the build's events.
        _ => Vec::new(),
    };
    let nested = matches!(key.as_str(), "in_parallel" | "retry" | "across" | "try" | "timeout");
    html! {
        @if nested {
            div.group data-origin=(id) data-kind=(key) {
                span.group-label { (key.replace('_', " ")) }
                @for (_, child) in &children { (step(child)) }
            }
        } @else {
            @for (hook, child) in &children {
                @match hook {
                    Some(hook) => div.group.hook data-kind=(hook) {
                        span.group-label { (hook.replace('_', " ")) }
                        (step(child))
                    },
                    None => (step(child)),
                }
            }
        }
    }
}
