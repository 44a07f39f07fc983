//! Access tokens (stored only as hashes) and who logged in when.

use super::{Db, DbResult, now, on_pool};

/// What a token proves: who holds it, until when, and the CSRF secret bound
/// to it for browser sessions.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AccessToken {
    pub username: String,
    pub connector: String,
    pub sub: String,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// A user seen logging in, for `GET /api/v1/users`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UserActivity {
    pub id: i64,
    pub username: String,
    pub connector: String,
    pub last_login: i64,
}

impl Db {
    pub async fn save_access_token(&self, token_hash: &str, token: &AccessToken) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO access_tokens (token_hash, username, connector, sub, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(token_hash).bind(&token.username).bind(&token.connector).bind(&token.sub)
        .bind(&token.csrf_token).bind(now()).bind(token.expires_at)
        .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The unexpired token with this hash, if any.
    pub async fn find_access_token(&self, token_hash: &str) -> DbResult<Option<AccessToken>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT username, connector, sub, csrf_token, expires_at FROM access_tokens
             WHERE token_hash = $1 AND expires_at > $2"
        ).bind(token_hash).bind(now()).fetch_optional(pool).await)?)
    }

    pub async fn delete_access_token(&self, token_hash: &str) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM access_tokens WHERE token_hash = $1")
            .bind(token_hash).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Removes expired tokens; returns how many.
    pub async fn delete_expired_access_tokens(&self) -> DbResult<u64> {
        Ok(on_pool!(self, pool => sqlx::query("DELETE FROM access_tokens WHERE expires_at <= $1")
            .bind(now()).execute(pool).await.map(|r| r.rows_affected()))?)
    }

    pub async fn record_login(&self, username: &str, connector: &str, sub: &str) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO users (username, connector, sub, last_login) VALUES ($1, $2, $3, $4)
             ON CONFLICT (connector, username) DO UPDATE SET last_login = excluded.last_login, sub = excluded.sub"
        ).bind(username).bind(connector).bind(sub).bind(now()).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn users_active_since(&self, since: i64) -> DbResult<Vec<UserActivity>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT id, username, connector, last_login FROM users WHERE last_login >= $1 ORDER BY username"
        ).bind(since).fetch_all(pool).await)?)
    }
}
