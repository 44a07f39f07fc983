//! The components' shared state: when each last ran, and whether an admin
//! paused it.

use std::time::Duration;

use super::{Db, DbResult, now, on_pool};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ComponentState {
    pub name: String,
    pub interval_seconds: i64,
    pub last_ran: i64,
    pub paused: bool,
}

impl Db {
    pub async fn register_component(&self, name: &str, interval: Duration) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO components (name, interval_seconds) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET interval_seconds = excluded.interval_seconds"
        ).bind(name).bind(interval.as_secs() as i64).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn record_component_run(&self, name: &str) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query("UPDATE components SET last_ran = $1 WHERE name = $2")
            .bind(now()).bind(name).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn component_paused(&self, name: &str) -> DbResult<bool> {
        Ok(on_pool!(self, pool => sqlx::query_scalar("SELECT paused FROM components WHERE name = $1")
            .bind(name).fetch_optional(pool).await)?
        .unwrap_or(false))
    }

    pub async fn components(&self) -> DbResult<Vec<ComponentState>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT name, interval_seconds, last_ran, paused FROM components ORDER BY name"
        ).fetch_all(pool).await)?)
    }

    /// Pauses or unpauses one component (`Some(name)`) or all of them;
    /// false when the named component does not exist.
    pub async fn set_components_paused(&self, name: Option<&str>, paused: bool) -> DbResult<bool> {
        let updated = on_pool!(self, pool => match name {
            Some(name) => sqlx::query("UPDATE components SET paused = $1 WHERE name = $2").bind(paused).bind(name)
                .execute(pool).await.map(|r| r.rows_affected()),
            None => sqlx::query("UPDATE components SET paused = $1").bind(paused)
                .execute(pool).await.map(|r| r.rows_affected()),
        })?;
        Ok(name.is_none() || updated > 0)
    }
}
