//! Browser logins in progress: from `/sky/login` to `/sky/callback`.

use super::{Db, DbResult, now, on_pool};

/// A login just started: where it goes once the user is known, and which
/// browser may finish it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLoginRequest {
    pub id: String,
    /// SHA-256 of the nonce in the starting browser's cookie.
    pub browser_binding: String,
    pub redirect_uri: String,
    pub expires_at: i64,
}

/// Who logged in, and where to, once a login's code is redeemed.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FinishedLogin {
    pub username: String,
    pub connector: String,
    pub redirect_uri: String,
}

impl Db {
    pub async fn create_login_request(&self, request: &NewLoginRequest) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO login_requests (id, browser_binding, redirect_uri, expires_at) VALUES ($1, $2, $3, $4)"
        ).bind(&request.id).bind(&request.browser_binding).bind(&request.redirect_uri).bind(request.expires_at)
        .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Whether an unexpired login `id` waits for the password of the
    /// browser bound by `browser_binding`.
    pub async fn login_request_pending(&self, id: &str, browser_binding: &str) -> DbResult<bool> {
        let found: Option<String> = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT id FROM login_requests
             WHERE id = $1 AND browser_binding = $2 AND code_digest IS NULL AND expires_at > $3"
        ).bind(id).bind(browser_binding).bind(now()).fetch_optional(pool).await)?;
        Ok(found.is_some())
    }

    /// Records who logged in and the digest of the one-time code that
    /// finishes the login; false when it is not pending for this browser.
    pub async fn complete_login_request(
        &self,
        id: &str,
        browser_binding: &str,
        code_digest: &str,
        username: &str,
        connector: &str,
    ) -> DbResult<bool> {
        let updated = on_pool!(self, pool => sqlx::query(
            "UPDATE login_requests SET code_digest = $1, username = $2, connector = $3
             WHERE id = $4 AND browser_binding = $5 AND code_digest IS NULL AND expires_at > $6"
        ).bind(code_digest).bind(username).bind(connector).bind(id).bind(browser_binding).bind(now())
        .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(updated > 0)
    }

    /// Redeems a login's code, once: the request is gone afterwards.
    pub async fn redeem_login_code(
        &self,
        id: &str,
        browser_binding: &str,
        code_digest: &str,
    ) -> DbResult<Option<FinishedLogin>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "DELETE FROM login_requests
             WHERE id = $1 AND browser_binding = $2 AND code_digest = $3 AND expires_at > $4
             RETURNING username, connector, redirect_uri"
        ).bind(id).bind(browser_binding).bind(code_digest).bind(now()).fetch_optional(pool).await)?)
    }

    /// Removes logins nobody finished in time; returns how many.
    pub async fn delete_expired_login_requests(&self) -> DbResult<u64> {
        Ok(on_pool!(self, pool => sqlx::query("DELETE FROM login_requests WHERE expires_at <= $1")
            .bind(now()).execute(pool).await.map(|r| r.rows_affected()))?)
    }
}
