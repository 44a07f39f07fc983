//! `/`: every pipeline the viewer may see, by team, each a tile of its jobs
//! coloured by their last build. `ui.js` keeps the colours current and
//! filters by the search box.

use std::collections::BTreeMap;

use axum::response::Response;
use maud::{Markup, html};

use super::layout::{self, Crumb};
use super::locator::PipelineLocator;
use super::model::{Job, Pipeline, Team};
use super::page_error::PageError;
use super::viewer::Viewer;

/// The colour of a pipeline's tile, as Concourse's dashboard picks it: the
/// worst of its jobs' statuses.
pub fn pipeline_status(pipeline: &Pipeline, jobs: &[&Job]) -> &'static str {
    if pipeline.paused {
        return "paused";
    }
    for status in ["failed", "errored", "aborted", "succeeded"] {
        if jobs.iter().any(|job| job.status() == status) {
            return status;
        }
    }
    "pending"
}

pub async fn page(viewer: Viewer) -> Result<Response, PageError> {
    let teams: Vec<Team> = viewer.api.get("/api/v1/teams").await?;
    // Archived pipelines are kept for their history, not shown as tiles.
    let pipelines: Vec<Pipeline> =
        viewer.api.get::<Vec<Pipeline>>("/api/v1/pipelines").await?.into_iter().filter(|p| !p.archived).collect();
    let jobs: Vec<Job> = viewer.api.get("/api/v1/jobs").await?;
    let mut jobs_of: BTreeMap<i64, Vec<&Job>> = BTreeMap::new();
    for job in &jobs {
        jobs_of.entry(job.pipeline_id).or_default().push(job);
    }
    // Teams with a visible pipeline, plus the viewer's own (perhaps empty) teams.
    let mut team_names: Vec<&str> = pipelines.iter().map(|p| p.team_name.as_str()).collect();
    team_names.extend(
        teams
            .iter()
            .map(|t| t.name.as_str())
            .filter(|name| viewer.user.as_ref().is_some_and(|u| u.teams.contains_key(*name))),
    );
    team_names.sort_unstable();
    team_names.dedup();

    let main = html! {
        div.toolbar {
            h1 { "Pipelines" }
            label.search for="search" {
                span.visually-hidden { "Search pipelines" }
                input #search type="search" placeholder="search: name, team:main, status:failed" autocomplete="off";
            }
        }
        @if team_names.is_empty() {
            p.empty {
                "No pipelines to show. "
                @if viewer.user.is_none() { a href=(viewer.login_link()) { "Log in" } " to see your team's pipelines, or " }
                "set one with " code { "fly set-pipeline" } "."
            }
        }
        @for team in &team_names {
            section.team data-team=(team) aria-labelledby={ "team-" (team) } {
                h2 id={ "team-" (team) } { (team) }
                div.tiles {
                    @for pipeline in pipelines.iter().filter(|p| p.team_name == *team) {
                        (tile(&viewer, pipeline, jobs_of.get(&pipeline.id).map(Vec::as_slice).unwrap_or(&[])))
                    }
                }
            }
        }
        p #no-match hidden { "No pipeline matches the search." }
    };
    Ok(layout::page(&viewer, "Pipelines", &[Crumb::here("Pipelines")], main, &[]))
}

fn tile(viewer: &Viewer, pipeline: &Pipeline, jobs: &[&Job]) -> Markup {
    let status = pipeline_status(pipeline, jobs);
    let locator = PipelineLocator::new(&pipeline.team_name, &pipeline.name, pipeline.instance_vars.as_ref());
    let job_statuses: Vec<&str> = jobs.iter().map(|j| if j.running() { "running" } else { j.status() }).collect();
    html! {
        article class={ "tile status-" (status) } data-pipeline-id=(pipeline.id) data-name=(pipeline.name)
            data-team=(pipeline.team_name) data-statuses=(job_statuses.join(" ") + " " + status) {
            h3 { a href=(locator.page("")) { (locator.title()) } }
            @if jobs.is_empty() {
                p.no-jobs { "no jobs" }
            } @else {
                ul.jobs aria-label={ "jobs of " (pipeline.name) } {
                    @for job in jobs {
                        li {
                            a class={ "job-cell status-" (job.status()) @if job.running() { " running" } }
                                data-job-id=(job.id)
                                href=(locator.job_page(&job.name, ""))
                                title={ (job.name) ": " (job.status()) } {
                                span.visually-hidden { (job.name) ": " span.job-status { (job.status()) } }
                            }
                        }
                    }
                }
            }
            footer {
                span.state { @if pipeline.paused { "paused" } @else { (status) } @if pipeline.public { " · public" } }
                @if viewer.operates(&pipeline.team_name) {
                    @if pipeline.paused {
                        button.button type="button" data-put=(locator.api("/unpause")) aria-label={ "Unpause " (pipeline.name) } { "Unpause" }
                    } @else {
                        button.button type="button" data-put=(locator.api("/pause")) aria-label={ "Pause " (pipeline.name) } { "Pause" }
                    }
                }
                @if viewer.is_member(&pipeline.team_name) {
                    @if pipeline.public {
                        button.button type="button" data-put=(locator.api("/hide")) aria-label={ "Hide " (pipeline.name) } { "Hide" }
                    } @else {
                        button.button type="button" data-put=(locator.api("/expose")) aria-label={ "Expose " (pipeline.name) } { "Expose" }
                    }
                }
            }
        }
    }
}
