//! `/sky`: logging in. `fly login -u -p` uses the OAuth2 password grant at
//! `/sky/issuer/token`; browsers use the `/sky/login` form, which sets the
//! `skymarshal_auth` session cookie and its `skymarshal_csrf` companion.

use axum::Json;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;

use super::AppState;
use super::access::{AUTH_COOKIE, CSRF_COOKIE, Caller, clear_session_cookies};
use super::body::RawBody;
use super::error::ApiError;
use super::instance_vars::form_pairs;

/// The OAuth2 client `fly` identifies itself as (public, as in Concourse).
const FLY_CLIENT_ID: &str = "fly";
const FLY_CLIENT_SECRET: &str = "Zmx5";
/// The connector local users log in through.
const LOCAL_CONNECTOR: &str = "local";

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({ "error": error, "error_description": description }))).into_response()
}

/// The client credentials: HTTP Basic first (URL-encoded, as Go's oauth2
/// sends them), else the `client_id`/`client_secret` form fields.
pub(crate) fn client_credentials(headers: &HeaderMap, form: &[(String, String)]) -> Option<(String, String)> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|encoded| BASE64.decode(encoded.trim()).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            let unescape = |s: &str| form_pairs(&format!("v={s}")).pop().map(|(_, v)| v).unwrap_or_default();
            Some((unescape(id), unescape(secret)))
        });
    basic.or_else(|| {
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Some((field("client_id")?, field("client_secret").unwrap_or_default()))
    })
}

pub async fn issue_token(State(state): State<AppState>, headers: HeaderMap, RawBody(body): RawBody) -> Response {
    let form = form_pairs(&String::from_utf8_lossy(&body));
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match client_credentials(&headers, &form) {
        Some((id, secret)) if id == FLY_CLIENT_ID && secret == FLY_CLIENT_SECRET => {}
        _ => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client or wrong client secret");
        }
    }
    if field("grant_type") != Some("password") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "only the password grant is supported");
    }
    let (Some(username), Some(password)) = (field("username"), field("password")) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "username and password are required");
    };
    let Some(username) = state.users.authenticate(username, password) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_grant", "invalid username or password");
    };
    match state.tokens.issue(username, LOCAL_CONNECTOR).await {
        Ok(token) => Json(json!({
            "access_token": token.value,
            "token_type": "bearer",
            "expires_in": token.expires_in.as_secs(),
        }))
        .into_response(),
        Err(err) => ApiError::from(err).into_response(),
    }
}

/// Only same-site relative paths: never another host, never `//host`.
pub(crate) fn safe_redirect(raw: Option<&str>) -> Option<String> {
    let target = raw.unwrap_or("/");
    let decoded = form_pairs(&format!("v={target}")).pop().map(|(_, v)| v).unwrap_or_default();
    let path = if decoded.is_empty() { "/".to_string() } else { decoded };
    let unsafe_target =
        !path.starts_with('/') || path.starts_with("//") || path.contains('\\') || path.chars().any(char::is_control);
    (!unsafe_target).then_some(path)
}

fn with_csrf(path: &str, csrf: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}csrf_token={csrf}")
}

/// The login form from `web/`, with its two placeholders filled in escaped.
fn login_page(redirect: &str, error: Option<&str>) -> Html<String> {
    const TEMPLATE: &str = include_str!("../../web/login.html");
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))).unwrap_or_default();
    Html(TEMPLATE.replace("{{error}}", &error).replace("{{redirect}}", &escape(redirect)))
}

fn session_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    ))
    .ok()
}

/// Shows the form, or goes straight on when the session is still valid.
pub async fn login_form(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let query = form_pairs(request.uri().query().unwrap_or(""));
    let redirect_uri = query.iter().find(|(k, _)| k == "redirect_uri").map(|(_, v)| v.as_str());
    let Some(redirect) = safe_redirect(redirect_uri) else {
        return ApiError::bad_request("redirect_uri must be a path on this server").into_response();
    };
    if let Some(token) = &caller.token
        && let Ok(Some(record)) = state.tokens.verify(token).await
    {
        return Redirect::to(&with_csrf(&redirect, &record.csrf_token)).into_response();
    }
    login_page(&redirect, None).into_response()
}

/// Checks the posted credentials, starts a browser session and redirects.
pub async fn login_submit(State(state): State<AppState>, RawBody(body): RawBody) -> Response {
    let form = form_pairs(&String::from_utf8_lossy(&body));
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some(redirect) = safe_redirect(field("redirect_uri")) else {
        return ApiError::bad_request("redirect_uri must be a path on this server").into_response();
    };
    let username = field("username").unwrap_or("");
    let password = field("password").unwrap_or("");
    let Some(username) = state.users.authenticate(username, password) else {
        let page = login_page(&redirect, Some("invalid username or password"));
        return (StatusCode::UNAUTHORIZED, page).into_response();
    };
    let token = match state.tokens.issue(username, LOCAL_CONNECTOR).await {
        Ok(token) => token,
        Err(err) => return ApiError::from(err).into_response(),
    };
    let lifetime = token.expires_in.as_secs();
    let mut response = Redirect::to(&with_csrf(&redirect, &token.csrf_token)).into_response();
    let auth_value = format!("bearer%20{}", token.value);
    for cookie in [
        session_cookie(AUTH_COOKIE, &auth_value, lifetime, state.cookie_secure),
        session_cookie(CSRF_COOKIE, &token.csrf_token, lifetime, state.cookie_secure),
    ]
    .into_iter()
    .flatten()
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Ends the session: the token stops working and the cookies are cleared.
pub async fn logout(State(state): State<AppState>, Extension(caller): Extension<Caller>) -> Response {
    let Some(token) = caller.token else {
        return ApiError::Unauthorized.into_response();
    };
    if let Err(err) = state.tokens.revoke(&token).await {
        return ApiError::from(err).into_response();
    }
    let mut response = StatusCode::OK.into_response();
    clear_session_cookies(&mut response, state.cookie_secure);
    response
}

#[cfg(test)]
mod tests {
    use super::safe_redirect;

    #[test]
    fn only_local_paths_are_redirect_targets() {
        assert_eq!(safe_redirect(None).as_deref(), Some("/"));
        assert_eq!(safe_redirect(Some("/teams/main")).as_deref(), Some("/teams/main"));
        assert_eq!(safe_redirect(Some("%2Fpipelines")).as_deref(), Some("/pipelines"));
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example", "%2F%2Fevil"] {
            assert_eq!(safe_redirect(Some(bad)), None, "{bad}");
        }
    }
}
