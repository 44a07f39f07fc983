//! The HTTP surface: the Concourse REST API under `/api/v1`, login under
//! `/sky`. Handlers are thin: parse, (already) authorized, call `db`, present.

pub mod access;
mod artifacts;
mod badges;
pub(crate) mod body;
mod browser_login;
pub(crate) mod build_events;
pub(crate) mod builds;
mod causality;
mod cctray;
pub(crate) mod checks;
mod clear;
mod components;
mod containers;
pub mod error;
mod hijack;
mod info;
pub(crate) mod instance_vars;
mod jobs;
mod json_array;
mod log_level;
mod login_pages;
pub(crate) mod login_target;
pub(crate) mod names;
pub(crate) mod pagination;
pub(crate) mod pipeline_config;
pub(crate) mod pipelines;
mod present;
mod resources;
pub mod routes;
pub(crate) mod sky;
pub(crate) mod teams;
mod text_limits;
mod unsupported;
mod users;
pub(crate) mod versions;
pub(crate) mod wall;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::auth::{LocalUsers, TokenService};
use crate::db::Db;
use crate::engine::Engine;
use crate::telemetry::HttpTelemetryLayer;
pub use info::CONCOURSE_VERSION;

/// What every handler may use.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub engine: Arc<Engine>,
    pub tokens: TokenService,
    pub users: Arc<LocalUsers>,
    pub settings: Arc<Settings>,
    pub cookie_secure: bool,
}

/// Facts about this atc the API reports.
#[derive(Debug, Clone)]
pub struct Settings {
    pub external_url: String,
    pub cluster_name: String,
    /// How large a `fly execute` upload may be.
    pub upload_limits: crate::runtime::UploadLimits,
    /// `--tracing-ui-url`: build pages link to their trace.
    pub trace_link: Option<crate::ui::trace_link::TraceLinkTemplate>,
}

/// The whole HTTP application: the API, the login, and the web UI's pages,
/// which read through the API as their viewer could.
pub fn router(state: AppState) -> Router {
    // The pages' own view of the API: every check a request from outside
    // gets, without a second server span inside the page's.
    let api_for_pages = with_layers(
        api_and_login_routes(&state).fallback(|| async { error::ApiError::NotFound("no such route".into()) }),
        &state,
    )
    .with_state(state.clone());
    let pages = crate::ui::routes(state.clone(), api_for_pages);
    with_layers(api_and_login_routes(&state).merge(pages).fallback(not_found), &state)
        // Outermost, so the span and the duration cover authentication too.
        .layer(HttpTelemetryLayer::new())
        .with_state(state)
}

fn api_and_login_routes(state: &AppState) -> Router<AppState> {
    let mut api = Router::new();
    for (spec, handler) in routes::api_routes() {
        let guarded =
            handler.route_layer(middleware::from_fn_with_state((state.clone(), spec.clone()), access::authorize));
        api = api.route(spec.path, guarded);
    }
    let sky = Router::new()
        .route("/sky/issuer/token", post(sky::issue_token))
        .route("/sky/login", get(browser_login::start))
        .route("/sky/issuer/auth", get(browser_login::issuer_auth))
        .route("/sky/issuer/auth/local", get(browser_login::local_connector))
        .route("/sky/issuer/auth/local/login", get(browser_login::password_form).post(browser_login::password_submit))
        .route("/sky/callback", get(browser_login::callback))
        .route("/login", get(browser_login::legacy_login))
        .route("/fly_success", get(browser_login::fly_success))
        .route("/sky/logout", get(sky::logout).post(sky::logout));
    api.merge(sky)
}

/// Everything every route gets; the routes (and fallback) must be in place.
fn with_layers(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    routes
        // After every route: it applies to the routes registered so far.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), access::authenticate))
        .layer(middleware::from_fn(refuse_nul_in_url))
        .layer(middleware::from_fn(concourse_version_header))
        // Bodies are read through `body::RawBody`, which enforces its own limit.
        .layer(DefaultBodyLimit::disable())
}

/// An unknown path: JSON for API and login clients, a page for browsers.
async fn not_found(uri: Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/sky/") {
        error::ApiError::NotFound("no such route".into()).into_response()
    } else {
        crate::ui::not_found()
    }
}

/// A known path called with a method it does not take (axum keeps the `Allow` header).
async fn method_not_allowed(method: Method, uri: Uri) -> error::ApiError {
    error::ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

async fn concourse_version_header(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await.into_response();
    response.headers_mut().insert("X-Concourse-Version", HeaderValue::from_static(CONCOURSE_VERSION));
    response
}

/// Names and values in the URL (job, resource and version names, filters)
/// reach database queries, which cannot carry a NUL on PostgreSQL; `%00` is
/// the only way a URL can spell one.
async fn refuse_nul_in_url(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let with_nul =
        [("path", uri.path()), ("query", uri.query().unwrap_or(""))].into_iter().find(|(_, text)| text.contains("%00"));
    match with_nul {
        Some((part, _)) => {
            error::ApiError::bad_request(format!("the URL's {part} contains {}", crate::nul::DESCRIPTION))
                .into_response()
        }
        None => next.run(request).await,
    }
}
