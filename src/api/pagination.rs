//! Concourse's list pagination: `from`, `to` and `limit` query parameters
//! (ids, both bounds inclusive) and `Link` headers to the neighbouring pages.

use axum::http::{HeaderValue, Uri, header};
use axum::response::Response;

use super::error::{ApiError, ApiResult};
use super::instance_vars::form_pairs;

pub const DEFAULT_LIMIT: i64 = 100;

/// The largest page answered; a larger `limit` is cut to it (the `Link`
/// headers lead on). Concourse has no maximum, but a page is held in memory
/// while it is sent, once per client asking: ten times the default is a
/// long page for a person and a bounded cost for the server.
pub const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: i64,
}

/// Reads `from`, `to` and `limit`; anything unparsable is a 400 naming it.
pub fn page_query(uri: &Uri) -> ApiResult<PageQuery> {
    let mut page = PageQuery { from: None, to: None, limit: DEFAULT_LIMIT };
    for (key, value) in form_pairs(uri.query().unwrap_or("")) {
        let number =
            || {
                value.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    ApiError::bad_request(format!("'{key}' must be a non-negative integer, got '{value}'"))
                })
            };
        match key.as_str() {
            "from" => page.from = Some(number()?),
            "to" => page.to = Some(number()?),
            "limit" => page.limit = Some(number()?).filter(|n| *n > 0).map_or(DEFAULT_LIMIT, |n| n.min(MAX_LIMIT)),
            _ => {}
        }
    }
    Ok(page)
}

/// Adds `Link` headers: `rel="next"` to the older page (`to` = `older`) and
/// `rel="previous"` to the newer one (`from` = `newer`). `extra_query` keeps
/// other parameters (instance vars) on the links.
pub fn add_links(
    response: &mut Response,
    base: &str,
    older: Option<i64>,
    newer: Option<i64>,
    limit: i64,
    extra_query: &str,
) {
    let extra = if extra_query.is_empty() { String::new() } else { format!("&{extra_query}") };
    let links = [
        older.map(|to| format!("<{base}?to={to}&limit={limit}{extra}>; rel=\"next\"")),
        newer.map(|from| format!("<{base}?from={from}&limit={limit}{extra}>; rel=\"previous\"")),
    ];
    for link in links.into_iter().flatten() {
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().append(header::LINK, value);
        }
    }
}
