//! Authentication (bearer token or browser cookie, with its CSRF check) and
//! per-route authorization from the route table's [`Policy`].

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::instance_vars;
use super::routes::{Policy, RouteSpec};
use crate::auth::roles::User;
use crate::auth::{Access, Role};
use crate::db::{Build, Pipeline, PipelineRef, Team};

pub const AUTH_COOKIE: &str = "skymarshal_auth";
pub const CSRF_COOKIE: &str = "skymarshal_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who made the request; put on every request by [`authenticate`].
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub access: Access,
    /// The raw token presented, when it was valid.
    pub token: Option<String>,
    /// A token was presented but is unknown or expired.
    pub presented_invalid_token: bool,
}

/// The team named in the path, resolved by [`authorize`].
#[derive(Debug, Clone)]
pub struct TeamScope(pub Team);

/// The build named in the path, resolved by [`authorize`].
#[derive(Debug, Clone)]
pub struct BuildScope(pub Build);

/// The pipeline named in the path, resolved by [`authorize`].
#[derive(Debug, Clone)]
pub struct PipelineScope {
    pub team: Team,
    pub pipeline: Pipeline,
}

fn bearer(value: &str) -> Option<String> {
    let (scheme, token) = value.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim().to_string())
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// The token a request carries: the `Authorization` header, else the
/// session cookie (then `true`: CSRF rules apply).
pub(crate) fn presented_token(headers: &HeaderMap) -> Option<(String, bool)> {
    if let Some(token) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer) {
        return Some((token, false));
    }
    let raw = cookie(headers, AUTH_COOKIE)?;
    let decoded: String =
        instance_vars::form_pairs(&format!("v={raw}")).into_iter().next().map(|(_, v)| v).unwrap_or_default();
    bearer(&decoded).map(|token| (token, true))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub fn clear_session_cookies(response: &mut Response, secure: bool) {
    for name in [AUTH_COOKIE, CSRF_COOKIE] {
        let cookie =
            format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}", if secure { "; Secure" } else { "" });
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

/// Works out the [`Caller`] of every request.
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let mut caller = Caller::default();
    let presented = presented_token(request.headers());
    let via_cookie = presented.as_ref().is_some_and(|(_, cookie)| *cookie);
    if let Some((token, via_cookie)) = presented {
        match state.tokens.verify(&token).await {
            Ok(Some(record)) => {
                // CSRF guards the API; `/sky` only logs in and out.
                if via_cookie && !is_safe(request.method()) && !request.uri().path().starts_with("/sky/") {
                    let csrf = request.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                    if csrf != Some(record.csrf_token.as_str()) {
                        let mut response = ApiError::Unauthorized.into_response();
                        clear_session_cookies(&mut response, state.cookie_secure);
                        return response;
                    }
                }
                let teams = match state.db.list_teams().await {
                    Ok(teams) => teams,
                    Err(err) => return ApiError::from(err).into_response(),
                };
                let user = User { username: record.username, connector: record.connector, sub: record.sub };
                caller.access = Access::for_user(user, &teams);
                caller.token = Some(token);
            }
            Ok(None) => caller.presented_invalid_token = true,
            Err(err) => return ApiError::from(err).into_response(),
        }
    }
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    if via_cookie && response.status() == StatusCode::UNAUTHORIZED {
        clear_session_cookies(&mut response, state.cookie_secure);
    }
    response
}

/// Applies a route's [`Policy`] and resolves the team or pipeline its path names.
pub async fn authorize(
    State((state, spec)): State<(AppState, RouteSpec)>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    mut request: Request,
    next: Next,
) -> Response {
    let params = match params {
        Ok(params) => params,
        Err(rejection) => return path_rejection(rejection).into_response(),
    };
    let caller = request.extensions().get::<Caller>().cloned().unwrap_or_default();
    // A token that is unknown or expired is refused on every route, public
    // ones too, rather than read as "anonymous" (as Concourse does).
    if caller.presented_invalid_token {
        return ApiError::Unauthorized.into_response();
    }
    let param = |name: &str| params.iter().find(|(key, _)| *key == name).map(|(_, v)| v.to_string());
    let team_name = param("team_name");
    let pipeline_name = param("pipeline_name");
    let query = request.uri().query().map(str::to_string);

    let outcome = match param("build_id") {
        Some(build_id) => check_build(&state, &spec, &caller, &build_id).await,
        None => check(&state, &spec, &caller, team_name, pipeline_name, query.as_deref()).await,
    };
    match outcome {
        Ok(Resolved::Nothing) => {}
        Ok(Resolved::Build(build)) => {
            request.extensions_mut().insert(BuildScope(*build));
        }
        Ok(Resolved::Team(team)) => {
            request.extensions_mut().insert(TeamScope(team));
        }
        Ok(Resolved::Pipeline(scope)) => {
            request.extensions_mut().insert(TeamScope(scope.team.clone()));
            request.extensions_mut().insert(*scope);
        }
        Err(err) => return err.into_response(),
    }
    next.run(request).await
}

/// Path parameters are decoded before anything else looks at them, so this
/// is the one place a malformed path is refused.
fn path_rejection(rejection: RawPathParamsRejection) -> ApiError {
    match rejection {
        RawPathParamsRejection::InvalidUtf8InPathParam(invalid) => {
            // axum names the parameter: "Invalid UTF-8 in `team_name`".
            let text = invalid.body_text();
            let param = text.split('`').nth(1).unwrap_or("a path segment");
            ApiError::bad_request(format!("the path's {param} is not valid UTF-8 once percent-decoded"))
        }
        other => ApiError::Internal(format!("route without its path parameters: {}", other.body_text())),
    }
}

enum Resolved {
    Nothing,
    Build(Box<Build>),
    Team(Team),
    Pipeline(Box<PipelineScope>),
}

async fn check(
    state: &AppState,
    spec: &RouteSpec,
    caller: &Caller,
    team_name: Option<String>,
    pipeline_name: Option<String>,
    query: Option<&str>,
) -> Result<Resolved, ApiError> {
    let access = &caller.access;
    let require_login = || {
        if access.is_authenticated() { Ok(()) } else { Err(ApiError::Unauthorized) }
    };
    match spec.policy {
        Policy::Anyone => {}
        Policy::Authenticated => require_login()?,
        Policy::AnyTeam => {
            require_login()?;
            if !access.is_admin && access.team_roles.is_empty() {
                return Err(ApiError::Forbidden);
            }
        }
        Policy::Admin => {
            require_login()?;
            if !access.is_admin {
                return Err(ApiError::Forbidden);
            }
        }
        Policy::TeamRole(role) => {
            require_login()?;
            let team = team_name.as_deref().unwrap_or_default();
            if !access.has_role(team, role) {
                return Err(ApiError::Forbidden);
            }
        }
        // Decided once the pipeline is known: public pipelines need no login.
        Policy::PipelineRead => {}
        Policy::BuildRead | Policy::BuildLogsRead | Policy::BuildRole(_) => {
            return Err(ApiError::Internal(format!("route {} has a build policy but no build in its path", spec.name)));
        }
    }

    let Some(team_name) = team_name else {
        return Ok(Resolved::Nothing);
    };
    // Only who may read a team learns what exists in it: to anyone else an
    // unknown team or pipeline answers exactly as a private pipeline does,
    // so names cannot be probed. (Role-gated routes refused them above.)
    let reads_team = access.has_role(&team_name, Role::Viewer);
    let hidden = || match spec.policy {
        // Public routes answer as for a team or pipeline with nothing public in it.
        Policy::Anyone => Ok(Resolved::Nothing),
        _ => Err(if access.is_authenticated() { ApiError::Forbidden } else { ApiError::Unauthorized }),
    };
    let team = match state.db.find_team(&team_name).await? {
        Some(team) => team,
        None if spec.creates && pipeline_name.is_none() => return Ok(Resolved::Nothing),
        None if reads_team => return Err(ApiError::not_found(format!("team '{team_name}'"))),
        None => return hidden(),
    };
    let Some(pipeline_name) = pipeline_name.filter(|_| !spec.names_group) else {
        return Ok(Resolved::Team(team));
    };
    let reference = PipelineRef { name: pipeline_name, instance_vars: instance_vars::from_query(query)? };
    let pipeline = match state.db.find_pipeline(&team.name, &reference).await? {
        Some(pipeline) => pipeline,
        None if spec.creates => return Ok(Resolved::Team(team)),
        None if reads_team => return Err(ApiError::not_found(format!("pipeline '{}'", reference.name))),
        None => return hidden(),
    };
    if spec.policy == Policy::PipelineRead && !pipeline.public && !reads_team {
        return hidden();
    }
    Ok(Resolved::Pipeline(Box::new(PipelineScope { team, pipeline })))
}

/// Applies a build policy to the build named in the path.
async fn check_build(
    state: &AppState,
    spec: &RouteSpec,
    caller: &Caller,
    build_id: &str,
) -> Result<Resolved, ApiError> {
    let access = &caller.access;
    let id: i64 = build_id.parse().map_err(|_| ApiError::bad_request(format!("'{build_id}' is not a build id")))?;
    // Build ids are sequential, so a missing one tells nobody anything.
    let build = state.db.find_build(id).await?.ok_or_else(|| ApiError::not_found(format!("build {id}")))?;
    let require = |role: Role| {
        if !access.is_authenticated() {
            Err(ApiError::Unauthorized)
        } else if access.has_role(&build.team_name, role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    };
    match spec.policy {
        Policy::BuildRole(role) => require(role)?,
        Policy::BuildRead | Policy::BuildLogsRead => {
            let public = match build.pipeline_id {
                Some(pipeline_id) => {
                    let pipeline_public = state.db.find_pipeline_by_id(pipeline_id).await?.is_some_and(|p| p.public);
                    let job_public = match (spec.policy, build.job_id, &build.job_name) {
                        (Policy::BuildRead, _, _) => true,
                        (_, Some(_), Some(job_name)) => {
                            state.db.find_job(pipeline_id, job_name).await?.is_some_and(|j| j.public)
                        }
                        _ => false,
                    };
                    pipeline_public && job_public
                }
                None => false,
            };
            if !public {
                require(Role::Viewer)?;
            }
        }
        _ => return Err(ApiError::Internal(format!("route {} names a build but has no build policy", spec.name))),
    }
    Ok(Resolved::Build(Box::new(build)))
}
