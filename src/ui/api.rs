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
        self.get_page(path).await.map(|(value, _)| value)
    }

    /// As [`Api::get`] for a paginated list, with the `to` of the next
    /// (older) page when there is one (from the `Link` header).
    pub async fn get_page<T: DeserializeOwned>(&self, path: &str) -> Result<(T, Option<i64>), PageError> {
        let mut request = Request::get(path);
        for (name, value) in &self.credentials {
            request = request.header(name, value);
        }
        let request = request.body(Body::empty()).map_err(|err| PageError::Failed(err.to_string()))?;
        let response = self.router.clone().oneshot(request).await.unwrap_or_else(|never| match never {});
        let status = response.status();
        let older = older_page(response.headers());
        let body = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
            .await
            .map_err(|err| PageError::Failed(format!("reading {path}: {err}")))?;
        match status {
            StatusCode::OK | StatusCode::CREATED => serde_json::from_slice(&body)
                .map(|value| (value, older))
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

/// The `to` of the `rel="next"` link: where the older page starts.
fn older_page(headers: &HeaderMap) -> Option<i64> {
    headers.get_all(header::LINK).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).find_map(|link| {
        let (target, rel) = link.split_once(';')?;
        if rel.trim() != "rel=\"next\"" {
            return None;
        }
        let query = target.trim().trim_start_matches('<').trim_end_matches('>').split_once('?')?.1;
        crate::api::instance_vars::form_pairs(query).into_iter().find(|(key, _)| key == "to")?.1.parse().ok()
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_older_page_is_read_from_the_next_link() {
        let mut headers = HeaderMap::new();
        assert_eq!(older_page(&headers), None);
        headers.append(
            header::LINK,
            "<http://ci/api/v1/teams/main/pipelines/p/jobs/j/builds?from=90&limit=5>; rel=\"previous\""
                .parse()
                .unwrap(),
        );
        headers.append(
            header::LINK,
            "<http://ci/api/v1/teams/main/pipelines/p/jobs/j/builds?to=74&limit=5&vars=%7B%7D>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(older_page(&headers), Some(74));
    }
}
