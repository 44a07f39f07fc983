//! `/teams/T/pipelines/P/jobs/J`: the job's builds, what its next build
//! would use, trigger and pause.

use axum::extract::{Path, Query, RawQuery};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::api::segment;
use super::layout::{self, Crumb, team_crumb};
use super::locator::PipelineLocator;
use super::model::{Build, Job, NextInput};
use super::page_error::PageError;
use super::viewer::Viewer;

#[derive(Deserialize)]
pub struct JobPath {
    team_name: String,
    pipeline_name: String,
    job_name: String,
}

/// Builds listed on the page, newest first.
const BUILDS_SHOWN: usize = 100;

pub async fn page(
    viewer: Viewer,
    Path(path): Path<JobPath>,
    Query(page): Query<layout::PageQuery>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let pipeline = PipelineLocator::from_page(&path.team_name, &path.pipeline_name, query.as_deref());
    let name = &path.job_name;
    let job: Job = viewer.api.get(&pipeline.job_api(name, "")).await?;
    let from = page.api_from();
    let (builds, older): (Vec<Build>, _) =
        viewer.api.get_page(&pipeline.job_api(name, &format!("/builds?limit={BUILDS_SHOWN}{from}"))).await?;
    let inputs: Option<Vec<NextInput>> = viewer.api.get_optional(&pipeline.job_api(name, "/inputs")).await?;
    let operates = viewer.operates(&job.team_name);
    let main = html! {
        div.toolbar {
            h1 { (job.name) " " (layout::status_badge(job.status())) }
            @if operates {
                @if !job.disable_manual_trigger {
                    button.button.primary #trigger type="button" data-post=(pipeline.job_api(name, "/builds")) data-go=(pipeline.job_page(name, "/builds/{build}")) { "Trigger build" }
                }
                @if job.paused {
                    button.button type="button" data-put=(pipeline.job_api(name, "/unpause")) { "Unpause job" }
                } @else {
                    button.button type="button" data-put=(pipeline.job_api(name, "/pause")) { "Pause job" }
                }
            }
        }
        div.columns {
            section.builds aria-labelledby="builds-title" {
                h2 #builds-title { "Builds" }
                @if builds.is_empty() {
                    p.empty { "No builds yet." }
                } @else {
                    table {
                        thead { tr { th scope="col" { "Build" } th scope="col" { "Status" } th scope="col" { "Started" } th scope="col" { "Duration" } } }
                        tbody {
                            @for build in &builds {
                                tr {
                                    td { a href=(pipeline.job_page(name, &format!("/builds/{}", segment(&build.name)))) { "#" (build.name) } }
                                    td { (layout::status_badge(&build.status)) }
                                    td { (layout::time(build.start_time)) }
                                    td { (layout::duration(build.start_time, build.end_time)) }
                                }
                            }
                        }
                    }
                }
                (layout::pager(&pipeline.job_page(name, ""), older, page.is_older()))
            }
            section.inputs aria-labelledby="inputs-title" {
                h2 #inputs-title { "Next build's inputs" }
                @match &inputs {
                    None => p.empty { "Only the team's members see the next build's inputs." },
                    Some(inputs) if inputs.is_empty() => p.empty { "No versions satisfy the inputs yet, or the job has none." },
                    Some(inputs) => ul.plain {
                        @for input in inputs {
                            li {
                                a href=(pipeline.resource_page(&input.resource)) { (input.name) }
                                (layout::version(&input.version))
                            }
                        }
                    },
                }
            }
        }
    };
    let crumbs =
        [team_crumb(&job.team_name), Crumb::link(pipeline.title(), pipeline.page("")), Crumb::here(job.name.clone())];
    Ok(layout::page(&viewer, &job.name, &crumbs, main, &[]))
}
