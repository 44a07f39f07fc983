//! The event log of each build, numbered from 0 in the order written.

use sqlx::AssertSqlSafe;

use super::{Db, DbResult, WritePool, on_pool};

/// An event as stored: its number within the build, type, version and JSON payload.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredEvent {
    pub event_id: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub version: String,
    pub payload: String,
}

/// Rows per INSERT: well under every engine's limit on bound parameters.
const INSERT_BATCH: usize = 500;

impl Db {
    /// The number the next event of a build gets.
    pub async fn next_event_id(&self, build_id: i64) -> DbResult<i64> {
        let max: Option<i64> = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT MAX(event_id) FROM build_events WHERE build_id = $1"
        ).bind(build_id).fetch_one(pool).await)?;
        Ok(max.map_or(0, |m| m + 1))
    }

    /// Appends events (already numbered by the caller) in one transaction.
    pub async fn append_events(&self, build_id: i64, events: &[StoredEvent]) -> DbResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for chunk in events.chunks(INSERT_BATCH) {
                let rows: Vec<String> = (0..chunk.len())
                    .map(|i| {
                        let base = i * 4 + 2;
                        format!("($1, ${}, ${}, ${}, ${})", base, base + 1, base + 2, base + 3)
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO build_events (build_id, event_id, type, version, payload) VALUES {}",
                    rows.join(", ")
                );
                let mut query = sqlx::query(AssertSqlSafe(sql)).bind(build_id);
                for event in chunk {
                    query = query.bind(event.event_id).bind(&event.kind).bind(&event.version).bind(&event.payload);
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Up to `limit` events of a build numbered `from` or later, in order.
    pub async fn build_events(&self, build_id: i64, from: i64, limit: i64) -> DbResult<Vec<StoredEvent>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT event_id, type, version, payload FROM build_events
             WHERE build_id = $1 AND event_id >= $2 ORDER BY event_id LIMIT $3"
        ).bind(build_id).bind(from).bind(limit).fetch_all(pool).await)?)
    }
}
