//! The stylesheet and scripts from `web/`, compiled into the binary.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

pub const STYLESHEET: &str = "/public/ui.css";
pub const COMMON_SCRIPT: &str = "/public/ui.js";
pub const BUILD_SCRIPT: &str = "/public/build.js";

const FILES: &[(&str, &str, &str)] = &[
    ("ui.css", "text/css; charset=utf-8", include_str!("../../web/ui.css")),
    ("ui.js", "text/javascript; charset=utf-8", include_str!("../../web/ui.js")),
    ("build.js", "text/javascript; charset=utf-8", include_str!("../../web/build.js")),
];

/// `GET /public/:file`. Browsers revalidate (the names carry no version),
/// which costs a 304 at most.
pub async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *body).into_response()
        }
        None => super::not_found(),
    }
}
