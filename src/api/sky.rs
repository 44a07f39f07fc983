//! `/sky`: tokens and logging out. `fly login -u -p` uses the OAuth2
//! password grant at `/sky/issuer/token`; browsers log in through
//! `browser_login`.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;

use super::AppState;
use super::access::{Caller, clear_session_cookies};
use super::body::RawBody;
use super::error::ApiError;
use super::instance_vars::form_pairs;

/// The OAuth2 client `fly` identifies itself as (public, as in Concourse).
const FLY_CLIENT_ID: &str = "fly";
const FLY_CLIENT_SECRET: &str = "Zmx5";
/// The connector local users log in through.
pub(super) const LOCAL_CONNECTOR: &str = "local";

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
