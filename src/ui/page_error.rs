//! What keeps a page from being shown, as the browser should see it: a
//! login for a viewer without access, a 404 page for an unknown name.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::layout;

#[derive(Debug)]
pub enum PageError {
    /// The API wants a login; the browser comes back to `back` after it.
    LoginRequired {
        back: String,
    },
    Forbidden,
    NotFound,
    Failed(String),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::LoginRequired { back } => {
                let query = serde_urlencoded::to_string([("redirect_uri", back)]).unwrap_or_default();
                Redirect::to(&format!("/sky/login?{query}")).into_response()
            }
            PageError::Forbidden => layout::message_page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Your roles do not let you see this page. Log in as another user or ask a team owner.",
            ),
            PageError::NotFound => not_found(),
            PageError::Failed(reason) => {
                tracing::warn!(%reason, "a web page could not be rendered");
                layout::message_page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", &reason)
            }
        }
    }
}

/// The page for a path or name that does not exist.
pub fn not_found() -> Response {
    layout::message_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "Nothing is here: the team, pipeline, job, build or resource may have been renamed or deleted.",
    )
}
