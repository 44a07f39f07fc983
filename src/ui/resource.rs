//! `/teams/T/pipelines/P/resources/R`: the resource's versions with their
//! metadata, pin (with a comment) and unpin, enable and disable, and a
//! check started from the page with its log.

use axum::extract::{Path, Query, RawQuery};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::layout::{self, Crumb, team_crumb};
use super::locator::PipelineLocator;
use super::model::{Resource, Version};
use super::page_error::PageError;
use super::viewer::Viewer;

#[derive(Deserialize)]
pub struct ResourcePath {
    team_name: String,
    pipeline_name: String,
    resource_name: String,
}

/// Versions listed on the page, newest first.
const VERSIONS_SHOWN: usize = 100;

pub async fn page(
    viewer: Viewer,
    Path(path): Path<ResourcePath>,
    Query(page): Query<layout::PageQuery>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let pipeline = PipelineLocator::from_page(&path.team_name, &path.pipeline_name, query.as_deref());
    let api = |suffix: &str| pipeline.resource_api(&path.resource_name, suffix);
    let resource: Resource = viewer.api.get(&api("")).await?;
    let from = page.api_from();
    let (versions, older): (Vec<Version>, _) =
        viewer.api.get_page(&api(&format!("/versions?limit={VERSIONS_SHOWN}{from}"))).await?;
    let operates = viewer.operates(&path.team_name);
    let pinned_id = versions.iter().find(|v| resource.pinned_version.as_ref() == Some(&v.version)).map(|v| v.id);
    let main = html! {
        div.toolbar {
            h1 { (resource.name) " " span.resource-type { (resource.type_) } }
            @if operates {
                button.button.primary #check type="button" data-check=(api("/check")) { "Check now" }
            }
        }
        dl.facts {
            div { dt { "Last checked" } dd { (layout::time(resource.last_checked)) } }
            div {
                dt { "Last check" }
                dd {
                    @match &resource.build {
                        Some(build) => (layout::status_badge(&build.status)),
                        None => "none yet",
                    }
                }
            }
            div {
                dt { "Pinned" }
                dd #pin-state {
                    @match &resource.pinned_version {
                        Some(version) => {
                            (layout::version(version))
                            @if resource.pinned_in_config { " (in the pipeline's config)" }
                        }
                        None => "no",
                    }
                }
            }
        }
        @if resource.pinned_version.is_some() && !resource.pinned_in_config {
            div.pin-bar {
                @if operates {
                    form #pin-comment data-put-json=(api("/pin_comment")) {
                        label for="pin-comment-text" { "Pin comment" }
                        input #pin-comment-text name="pin_comment" value=(resource.pin_comment);
                        button.button type="submit" { "Save comment" }
                    }
                    button.button #unpin type="button" data-put=(api("/unpin")) { "Unpin" }
                } @else if !resource.pin_comment.is_empty() {
                    p { "Pin comment: " (resource.pin_comment) }
                }
            }
        }
        section #check-output hidden[resource.build.is_none()] data-build-id=[resource.build.as_ref().map(|b| b.id)]
            aria-labelledby="check-title" {
            h2 #check-title { "Last check's log" span #check-status {} }
            div.log #check-log role="log" aria-label="check log" tabindex="0" {}
        }
        section aria-labelledby="versions-title" {
            h2 #versions-title { "Versions" }
            @if versions.is_empty() {
                p.empty { "No versions yet." }
            } @else {
                ul.versions {
                    @for version in &versions {
                        @let version_api = |action: &str| api(&format!("/versions/{}/{action}", version.id));
                        @let pinned = pinned_id == Some(version.id);
                        li.version-row.disabled[!version.enabled].pinned[pinned]
                            data-version-id=(version.id) {
                            div.version-body {
                                (layout::version(&version.version))
                                @if !version.metadata.is_empty() {
                                    dl.metadata {
                                        @for field in &version.metadata { div { dt { (field.name) } dd { (field.value) } } }
                                    }
                                }
                            }
                            @if operates {
                                div.version-actions {
                                    @if !pinned && !resource.pinned_in_config {
                                        button.button.pin type="button" data-put=(version_api("pin")) { "Pin" }
                                    }
                                    @if version.enabled {
                                        button.button type="button" data-put=(version_api("disable")) { "Disable" }
                                    } @else {
                                        button.button type="button" data-put=(version_api("enable")) { "Enable" }
                                    }
                                }
                            } @else {
                                @if pinned { span.badge { "pinned" } }
                                @if !version.enabled { span.badge { "disabled" } }
                            }
                        }
                    }
                }
            }
            (layout::pager(&pipeline.resource_page(&path.resource_name), older, page.is_older()))
        }
    };
    let crumbs = [
        team_crumb(&path.team_name),
        Crumb::link(pipeline.title(), pipeline.page("")),
        Crumb::here(resource.name.clone()),
    ];
    Ok(layout::page(&viewer, &resource.name, &crumbs, main, &[super::assets::BUILD_SCRIPT]))
}
