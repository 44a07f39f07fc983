//! `/teams/T/pipelines/P`: the pipeline's graph, its groups as tabs
//! (`?group=NAME`, as Concourse's links have them) and pause/unpause.

use axum::extract::{Path, Query, RawQuery};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::layout::{self, Crumb, team_crumb};
use super::locator::{PipelineLocator, with_query};
use super::model::{Job, Pipeline, Resource};
use super::page_error::PageError;
use super::viewer::Viewer;
use super::{dashboard, graph};

/// The path of every page under a pipeline.
#[derive(Deserialize)]
pub struct PipelinePath {
    pub team_name: String,
    pub pipeline_name: String,
}

#[derive(Deserialize)]
pub struct GroupQuery {
    group: Option<String>,
}

pub async fn page(
    viewer: Viewer,
    Path(path): Path<PipelinePath>,
    Query(query): Query<GroupQuery>,
    RawQuery(raw_query): RawQuery,
) -> Result<Response, PageError> {
    let locator = PipelineLocator::from_page(&path.team_name, &path.pipeline_name, raw_query.as_deref());
    let pipeline: Pipeline = viewer.api.get(&locator.api("")).await?;
    let jobs: Vec<Job> = viewer.api.get(&locator.api("/jobs")).await?;
    let resources: Vec<Resource> = viewer.api.get(&locator.api("/resources")).await?;
    let groups = pipeline.groups.clone().unwrap_or_default();
    let selected = match &query.group {
        Some(name) => Some(groups.iter().find(|g| &g.name == name).ok_or(PageError::NotFound)?),
        None => groups.first(),
    };
    let shown_jobs: Vec<&Job> = jobs.iter().filter(|j| selected.is_none_or(|g| g.jobs.contains(&j.name))).collect();
    let shown_resources: Vec<&Resource> = resources
        .iter()
        .filter(|r| {
            selected.is_none_or(|g| {
                g.resources.contains(&r.name)
                    || shown_jobs.iter().any(|j| {
                        j.inputs.iter().any(|i| i.resource == r.name) || j.outputs.iter().any(|o| o.resource == r.name)
                    })
            })
        })
        .collect();
    let status = dashboard::pipeline_status(&pipeline, &jobs.iter().collect::<Vec<_>>());
    let main = html! {
        div.toolbar {
            h1 { (locator.title()) " " (layout::status_badge(status)) }
            @if viewer.operates(&pipeline.team_name) {
                @if pipeline.paused {
                    button.button type="button" data-put=(locator.api("/unpause")) { "Unpause pipeline" }
                } @else {
                    button.button type="button" data-put=(locator.api("/pause")) { "Pause pipeline" }
                }
            }
        }
        @if groups.len() > 1 {
            nav.tabs aria-label="Groups" {
                @for group in &groups {
                    @let current = selected.is_some_and(|s| s.name == group.name);
                    @let group_query = serde_urlencoded::to_string([("group", &group.name)]).unwrap_or_default();
                    a.tab href=(with_query(locator.page(""), &group_query)) aria-current=[current.then_some("page")] { (group.name) }
                }
            }
        }
        @if shown_jobs.is_empty() && shown_resources.is_empty() {
            p.empty { "This pipeline has no jobs or resources." }
        } @else {
            div.graph-frame tabindex="0" role="region" aria-label="Pipeline graph, scrolls sideways on small screens" {
                (graph::svg(&locator, &shown_jobs, &shown_resources))
            }
        }
    };
    let crumbs = [team_crumb(&pipeline.team_name), Crumb::here(locator.title())];
    Ok(layout::page(&viewer, &pipeline.name, &crumbs, main, &[]))
}
