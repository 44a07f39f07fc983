//! The frame around every page (header with the way back, the user menu,
//! the stylesheet and scripts) and small pieces many pages show.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::viewer::Viewer;

/// One step of the breadcrumb trail: its text and, except the last, its link.
pub struct Crumb {
    pub label: String,
    pub href: Option<String>,
}

impl Crumb {
    pub fn link(label: impl Into<String>, href: impl Into<String>) -> Crumb {
        Crumb { label: label.into(), href: Some(href.into()) }
    }

    pub fn here(label: impl Into<String>) -> Crumb {
        Crumb { label: label.into(), href: None }
    }
}

fn document(title: &str, csrf: Option<&str>, header: Markup, main: Markup, scripts: &[&str]) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(token) = csrf { meta name="csrf-token" content=(token); }
                title { (title) " - atc" }
                link rel="stylesheet" href=(super::assets::STYLESHEET);
                script src=(super::assets::COMMON_SCRIPT) defer {}
                @for script in scripts { script src=(script) defer {} }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                (header)
                main #main tabindex="-1" { (main) }
            }
        }
    }
}

fn top_bar(viewer: Option<&Viewer>, crumbs: &[Crumb]) -> Markup {
    html! {
        header.top {
            a.logo href="/" aria-label="atc home: all pipelines" { "atc" }
            nav.crumbs aria-label="Breadcrumb" {
                ol {
                    @for crumb in crumbs {
                        li {
                            @match &crumb.href {
                                Some(href) => a href=(href) { (crumb.label) },
                                None => span aria-current="page" { (crumb.label) },
                            }
                        }
                    }
                }
            }
            @if let Some(viewer) = viewer {
                div.user {
                    @match &viewer.user {
                        Some(user) => {
                            span.user-name title="Logged in" { (user.user_name) }
                            button.button #logout type="button" { "Log out" }
                        }
                        None => a.button #login href=(viewer.login_link()) { "Log in" },
                    }
                }
            }
        }
    }
}

/// A whole page for `viewer`.
pub fn page(viewer: &Viewer, title: &str, crumbs: &[Crumb], main: Markup, scripts: &[&str]) -> Response {
    let markup = document(title, viewer.csrf.as_deref(), top_bar(Some(viewer), crumbs), main, scripts);
    Html(markup.into_string()).into_response()
}

/// A page that only says something (errors, 404).
pub fn message_page(status: StatusCode, title: &str, text: &str) -> Response {
    let main = html! {
        section.message {
            h1 { (title) }
            p { (text) }
            p { a href="/" { "Go to all pipelines" } }
        }
    };
    (status, Html(document(title, None, top_bar(None, &[Crumb::here(title)]), main, &[]).into_string())).into_response()
}

/// A status badge: its colour and its word (never colour alone).
pub fn status_badge(status: &str) -> Markup {
    html! { span class={ "badge status-" (status) } { (status) } }
}

/// A Unix time as UTC text, machine-readable too.
pub fn time(unix: i64) -> Markup {
    match jiff::Timestamp::from_second(unix) {
        Ok(t) if unix > 0 => html! {
            time datetime=(t.to_string()) { (t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()) }
        },
        _ => html! { "-" },
    }
}

/// How long from `start` to `end` (or to now for a running build).
pub fn duration(start: i64, end: i64) -> String {
    if start <= 0 {
        return "-".into();
    }
    let end = if end > 0 { end } else { jiff::Timestamp::now().as_second() };
    let seconds = (end - start).max(0);
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

/// A version as `key: value` pairs, one per line.
pub fn version(version: &std::collections::BTreeMap<String, String>) -> Markup {
    html! {
        dl.version {
            @for (key, value) in version { div { dt { (key) } dd { (value) } } }
        }
    }
}

/// Which page of a list (builds, versions) a page shows: `?to=ID` starts
/// an older page at that item, none is the newest page.
#[derive(serde::Deserialize)]
pub struct PageQuery {
    to: Option<i64>,
}

impl PageQuery {
    /// The API query's `&to=ID` for this page ("" for the newest).
    pub fn api_from(&self) -> String {
        self.to.map(|to| format!("&to={to}")).unwrap_or_default()
    }

    /// Whether this is an older page, not the newest.
    pub fn is_older(&self) -> bool {
        self.to.is_some()
    }
}

/// Links to the newer and older pages of a list (builds, versions):
/// `older_to` is where the older page starts, `paged` whether this is not
/// the newest page.
pub fn pager(base: &str, older_to: Option<i64>, paged: bool) -> Markup {
    html! {
        @if paged || older_to.is_some() {
            nav.pager aria-label="Pages" {
                @if paged { a href=(base) { "Newest" } }
                @if let Some(to) = older_to {
                    a href=(super::locator::with_query(base.to_string(), &format!("to={to}"))) { "Older" }
                }
            }
        }
    }
}

/// A team's crumb: the dashboard searched for the team.
pub fn team_crumb(team: &str) -> Crumb {
    let query = serde_urlencoded::to_string([("search", format!("team:{team}"))]).unwrap_or_default();
    Crumb::link(team, format!("/?{query}"))
}
