//! Who is looking at a page: the API as they may call it, their user (none
//! for the public view) and the CSRF token their browser's scripts send.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;

use super::UiState;
use super::api::Api;
use super::model::User;
use super::page_error::PageError;
use crate::api::access::Caller;

pub struct Viewer {
    pub api: Api,
    pub user: Option<User>,
    /// For the `X-Csrf-Token` header of the page's API calls, which send
    /// the session cookie.
    pub csrf: Option<String>,
    /// This page's path and query.
    pub here: String,
}

impl Viewer {
    /// The browser login, coming back to this page.
    pub fn login_link(&self) -> String {
        let query = serde_urlencoded::to_string([("redirect_uri", &self.here)]).unwrap_or_default();
        format!("/sky/login?{query}")
    }

    pub fn operates(&self, team: &str) -> bool {
        self.user.as_ref().is_some_and(|u| u.operates(team))
    }

    pub fn is_member(&self, team: &str) -> bool {
        self.user.as_ref().is_some_and(|u| u.is_member(team))
    }
}

impl FromRequestParts<UiState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &UiState) -> Result<Viewer, PageError> {
        let uri = parts.extensions.get::<OriginalUri>().map_or_else(|| parts.uri.clone(), |o| o.0.clone());
        // The login appends the session's CSRF token to the page it returns
        // to; the page has it from the session itself, so it is left out.
        let query: Vec<(String, String)> = crate::api::instance_vars::form_pairs(uri.query().unwrap_or(""))
            .into_iter()
            .filter(|(key, _)| key != "csrf_token")
            .collect();
        let here = match serde_urlencoded::to_string(&query).unwrap_or_default() {
            q if q.is_empty() => uri.path().to_string(),
            q => format!("{}?{q}", uri.path()),
        };
        let api = Api::new(state.api.clone(), &parts.headers, here.clone());
        let user = api.get_optional::<User>("/api/v1/user").await?;
        let token = parts.extensions.get::<Caller>().and_then(|caller| caller.token.clone());
        let csrf = match (&user, token) {
            (Some(_), Some(token)) => state
                .app
                .tokens
                .verify(&token)
                .await
                .map_err(|err| PageError::Failed(err.to_string()))?
                .map(|session| session.csrf_token),
            _ => None,
        };
        Ok(Viewer { api, user, csrf, here })
    }
}
