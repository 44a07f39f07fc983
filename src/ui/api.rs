//! The pages read everything through the public REST API, called in
//! process with the browser's own credentials: a page can show only what
//! its viewer could fetch with `fly` or `curl`, and authorization stays in
//! the route table.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Request, StatusCode, header};
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use super::page_error::PageError;

/// Largest API answer a page reads (a page of versions or builds is far smaller).
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// The API as one browser sees it.
#[derive(Clone)]
pub struct Api {
    router: Router,
    credentials: Vec<(HeaderName, axum::http::HeaderValue)>,
    /// The page being rendered: where a login sends the browser back to.
    page: String,
}

impl Api {
    pub fn new(router: Router, headers: &HeaderMap, page: String) -> Api {
        let credentials = [header::COOKIE, header::AUTHORIZATION]
            .into_iter()
            .flat_map(|name| headers.get_all(&name).iter().map(move |value| (name.clone(), value.clone())))
            .collect();
        Api { router, credentials, page }
    }

    /// `GET path`, read as `T`; the API's refusals become the page's.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, PageError> {
        let mut request = Request::get(path);
        for (name, value) in &self.credentials {
            request = request.header(name, value);
        }
        let request = request.body(Body::empty()).map_err(|err| PageError::Failed(err.to_string()))?;
        let response = self.router.clone().oneshot(request).await.unwrap_or_else(|never| match never {});
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
            .await
            .map_err(|err| PageError::Failed(format!("reading {path}: {err}")))?;
        match status {
            StatusCode::OK | StatusCode::CREATED => serde_json::from_slice(&body)
                .map_err(|err| PageError::Failed(format!("the answer of {path} is not what the page expects: {err}"))),
            StatusCode::UNAUTHORIZED => Err(PageError::LoginRequired { back: self.page.clone() }),
            StatusCode::FORBIDDEN => Err(PageError::Forbidden),
            StatusCode::NOT_FOUND => Err(PageError::NotFound),
            other => Err(PageError::Failed(format!("{path} answered {other}: {}", String::from_utf8_lossy(&body)))),
        }
    }

    /// As [`Api::get`], but a refusal or absence is `None`: for parts of a
    /// page that some viewers may not see (a public pipeline's inputs).
    pub async fn get_optional<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, PageError> {
        match self.get(path).await {
            Ok(value) => Ok(Some(value)),
            Err(PageError::NotFound | PageError::Forbidden | PageError::LoginRequired { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// A path segment, escaped for an API or page URL.
pub fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
