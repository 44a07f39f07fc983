//! The browser login, on the paths, field names and cookies of Concourse's
//! skymarshal and Dex, which scripts drive by name:
//!
//! 1. `GET /sky/login?redirect_uri=X` starts a login request bound to this
//!    browser (a nonce in the `skymarshal_login` cookie) and redirects to
//!    `/sky/issuer/auth?...&state=ID`,
//! 2. which redirects to the local connector, `/sky/issuer/auth/local`,
//! 3. which redirects to its form, `/sky/issuer/auth/local/login?back=&state=ID`;
//! 4. the form posts `login` and `password` there; success redirects to
//!    `/sky/callback?code=C&state=ID`,
//! 5. which redeems the one-time code, sets `skymarshal_auth`
//!    (`"Bearer TOKEN"`) and `skymarshal_csrf`, and redirects to X.
//!
//! X is a path here, or fly's callback: `fly login` prints
//! `/login?fly_port=N`, and the login ends at
//! `http://127.0.0.1:N/auth/callback?token=Bearer%20TOKEN`.
//!
//! The binding cookie is what keeps the login form from being forged: a
//! page elsewhere cannot make a browser finish a login (the attacker's)
//! that this browser did not start.

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::access::{AUTH_COOKIE, CSRF_COOKIE, Caller, cookie};
use super::body::RawBody;
use super::error::{ApiError, ApiResult};
use super::instance_vars::form_pairs;
use super::login_pages;
use super::login_target::{LoginTarget, fly_callback_uri, parse_port};
use super::sky::LOCAL_CONNECTOR;
use crate::auth::{hash_token, random_secret};
use crate::db::NewLoginRequest;

/// Holds the nonce binding login requests to the browser that started them.
const LOGIN_COOKIE: &str = "skymarshal_login";
/// How long a started login may take.
const LOGIN_LIFETIME_SECONDS: i64 = 3600;
const PASSWORD_LOGIN_PATH: &str = "/sky/issuer/auth/local/login";

fn param(uri: &Uri, name: &str) -> Option<String> {
    form_pairs(uri.query().unwrap_or("")).into_iter().find(|(key, _)| key == name).map(|(_, value)| value)
}

fn required_param(uri: &Uri, name: &str) -> ApiResult<String> {
    param(uri, name)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{name} is missing")))
}

fn cookie_header(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    ))
    .ok()
}

/// The binding nonce this browser holds, if it holds a well-formed one.
fn browser_nonce(headers: &HeaderMap) -> Option<String> {
    cookie(headers, LOGIN_COOKIE)
        .filter(|nonce| nonce.len() == 43 && nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .map(str::to_string)
}

/// The binding of the browser sending `headers`; a request without the
/// cookie cannot continue a login.
fn browser_binding(headers: &HeaderMap) -> ApiResult<String> {
    browser_nonce(headers).map(|nonce| hash_token(&nonce)).ok_or_else(|| {
        ApiError::bad_request("this browser did not start this login (no login cookie): start again at /sky/login")
    })
}

fn expired_login() -> ApiError {
    ApiError::bad_request("this login is unknown, expired or was started in another browser: start again at /sky/login")
}

/// `GET /sky/login`: continues at once when the session is still valid,
/// else starts a login request and sends the browser to the issuer.
pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let target = LoginTarget::parse(&param(&uri, "redirect_uri").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(token) = &caller.token
        && let Some(session) = state.tokens.verify(token).await?
    {
        return continue_to(&state, &target, &session.username, &session.connector, &session.csrf_token).await;
    }
    let existing_nonce = browser_nonce(&headers);
    let nonce = existing_nonce.clone().unwrap_or_else(random_secret);
    let id = random_secret();
    state
        .db
        .create_login_request(&NewLoginRequest {
            id: id.clone(),
            browser_binding: hash_token(&nonce),
            redirect_uri: target.as_uri(),
            expires_at: crate::db::now() + LOGIN_LIFETIME_SECONDS,
        })
        .await?;
    let query = serde_urlencoded::to_string([
        ("client_id", "concourse-web"),
        ("redirect_uri", &format!("{}/sky/callback", state.settings.external_url)),
        ("response_type", "code"),
        ("scope", "openid profile email federated:id groups"),
        ("state", &id),
    ])
    .map_err(|err| ApiError::Internal(err.to_string()))?;
    let mut response = Redirect::temporary(&format!("/sky/issuer/auth?{query}")).into_response();
    // A browser keeps its nonce, so logins started in several tabs all work.
    if existing_nonce.is_none()
        && let Some(value) = cookie_header(LOGIN_COOKIE, &nonce, "/sky", LOGIN_LIFETIME_SECONDS, state.cookie_secure)
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `GET /sky/issuer/auth`: the issuer has one connector, the local users.
pub async fn issuer_auth(uri: Uri) -> ApiResult<Redirect> {
    required_param(&uri, "state")?;
    Ok(Redirect::to(&format!("/sky/issuer/auth/local?{}", uri.query().unwrap_or(""))))
}

/// `GET /sky/issuer/auth/local`: a password connector, whose form follows.
pub async fn local_connector(uri: Uri) -> ApiResult<Redirect> {
    let id = required_param(&uri, "state")?;
    Ok(Redirect::to(&password_form_path(&id)))
}

fn password_form_path(id: &str) -> String {
    let query = serde_urlencoded::to_string([("back", ""), ("state", id)]).unwrap_or_default();
    format!("{PASSWORD_LOGIN_PATH}?{query}")
}

/// `GET /sky/issuer/auth/local/login`: the form, for a login this browser started.
pub async fn password_form(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> ApiResult<Response> {
    let id = required_param(&uri, "state")?;
    if !state.db.login_request_pending(&id, &browser_binding(&headers)?).await? {
        return Err(expired_login());
    }
    Ok(login_pages::password_form(&password_form_path(&id), "", None).into_response())
}

/// `POST /sky/issuer/auth/local/login`: checks the password; on success
/// the login gets a one-time code, redeemed at `/sky/callback`.
pub async fn password_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let id = required_param(&uri, "state")?;
    let binding = browser_binding(&headers)?;
    if !state.db.login_request_pending(&id, &binding).await? {
        return Err(expired_login());
    }
    let form = form_pairs(&String::from_utf8_lossy(&body));
    let field = |name: &str| form.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).unwrap_or("");
    let Some(username) = state.users.authenticate(field("login"), field("password")) else {
        let page =
            login_pages::password_form(&password_form_path(&id), field("login"), Some("invalid username or password"));
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    };
    let code = random_secret();
    if !state.db.complete_login_request(&id, &binding, &hash_token(&code), username, LOCAL_CONNECTOR).await? {
        return Err(expired_login());
    }
    let query = serde_urlencoded::to_string([("code", code.as_str()), ("state", id.as_str())])
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    Ok(Redirect::to(&format!("/sky/callback?{query}")).into_response())
}

/// `GET /sky/callback`: redeems the code, starts the browser session and
/// sends the browser where the login was going.
pub async fn callback(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> ApiResult<Response> {
    if let Some(error) = param(&uri, "error") {
        let description = param(&uri, "error_description").unwrap_or_default();
        return Err(ApiError::bad_request(format!("login failed: {error} {description}").trim_end().to_string()));
    }
    let id = required_param(&uri, "state")?;
    let code = required_param(&uri, "code")?;
    let finished = state
        .db
        .redeem_login_code(&id, &browser_binding(&headers)?, &hash_token(&code))
        .await?
        .ok_or_else(expired_login)?;
    let target = LoginTarget::parse(&finished.redirect_uri).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let session = state.tokens.issue(&finished.username, &finished.connector).await?;
    let mut response =
        continue_to(&state, &target, &finished.username, &finished.connector, &session.csrf_token).await?;
    let lifetime = session.expires_in.as_secs() as i64;
    for value in [
        cookie_header(AUTH_COOKIE, &format!("\"Bearer {}\"", session.value), "/", lifetime, state.cookie_secure),
        cookie_header(CSRF_COOKIE, &session.csrf_token, "/", lifetime, state.cookie_secure),
    ]
    .into_iter()
    .flatten()
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Where a logged-in browser goes: a page here (with the session's CSRF
/// token, as the web UI expects), or fly's callback with a token of its own,
/// so logging out in the browser does not log fly out.
async fn continue_to(
    state: &AppState,
    target: &LoginTarget,
    username: &str,
    connector: &str,
    csrf_token: &str,
) -> ApiResult<Response> {
    match target {
        LoginTarget::Path(path) => {
            let separator = if path.contains('?') { '&' } else { '?' };
            Ok(Redirect::temporary(&format!("{path}{separator}csrf_token={csrf_token}")).into_response())
        }
        LoginTarget::Fly { host, port } => {
            let token = state.tokens.issue(username, connector).await?;
            let query = serde_urlencoded::to_string([("token", format!("Bearer {}", token.value))])
                .map_err(|err| ApiError::Internal(err.to_string()))?;
            // `+` would reach fly as a space all the same; `%20` is what the web UI sends.
            let query = query.replace('+', "%20");
            Ok(Redirect::to(&format!("{}?{query}", fly_callback_uri(host, *port))).into_response())
        }
    }
}

/// `GET /login`: where `fly login` sends the user (`?fly_port=N`).
pub async fn legacy_login(uri: Uri) -> ApiResult<Redirect> {
    let Some(port) = param(&uri, "fly_port") else {
        let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        return Ok(Redirect::to(&format!("/sky/login{query}")));
    };
    Ok(Redirect::to(&login_for_fly(&port)?))
}

fn login_for_fly(port: &str) -> ApiResult<String> {
    let port = parse_port(port).ok_or_else(|| ApiError::bad_request(format!("fly_port '{port}' is not a port")))?;
    let query = serde_urlencoded::to_string([("redirect_uri", fly_callback_uri("127.0.0.1", port))])
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    Ok(format!("/sky/login?{query}"))
}

/// `GET /fly_success`: fly's callback server sends the browser here once it
/// has its token (`?noop=true`); with `?fly_port=N` (the web UI's own
/// route) the token is sent to fly first.
pub async fn fly_success(uri: Uri) -> ApiResult<Response> {
    match param(&uri, "fly_port") {
        Some(port) if param(&uri, "noop").as_deref() != Some("true") => {
            Ok(Redirect::to(&login_for_fly(&port)?).into_response())
        }
        _ => Ok(login_pages::fly_success().into_response()),
    }
}
