//! The wall: one message admins show to every user, optionally expiring.

use super::{Db, DbResult, now, on_pool};

impl Db {
    /// The current message and the seconds it has left (`None`: no expiry).
    pub async fn wall(&self) -> DbResult<Option<(String, Option<i64>)>> {
        let row: Option<(String, Option<i64>)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT message, expires_at FROM wall WHERE id = 1 AND (expires_at IS NULL OR expires_at > $1)"
        ).bind(now()).fetch_optional(pool).await)?;
        Ok(row.map(|(message, expires_at)| (message, expires_at.map(|at| at - now()))))
    }

    pub async fn set_wall(&self, message: &str, ttl_seconds: Option<i64>) -> DbResult<()> {
        let expires_at = ttl_seconds.map(|ttl| now() + ttl);
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO wall (id, message, expires_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET message = excluded.message, expires_at = excluded.expires_at"
        ).bind(message).bind(expires_at).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn clear_wall(&self) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM wall").execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
