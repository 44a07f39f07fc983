//! The event log of each build, numbered from 0 in the order written.
//!
//! A running build's events and final status are written only under its
//! lease (`leases.rs`): each write is a transaction whose first statement
//! updates the build row on the condition that the lease is still the
//! writer's. On PostgreSQL that statement also takes the row's lock, so a
//! takeover (an UPDATE of the same row) waits for a write in progress, and
//! a write after a takeover matches nothing; SQLite runs one writer at a
//! time. Builds that never ran are ended without a lease
//! ([`Db::end_unstarted_build`]): nobody else writes their events.

use sqlx::AssertSqlSafe;

use super::{BuildStatus, Db, DbError, DbResult, WritePool, now, on_pool};
use crate::db::BuildLease;

/// An event as stored: its number within the build, type, version and JSON payload.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredEvent {
    pub event_id: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub version: String,
    pub payload: String,
}

/// An event to be numbered by the database, for builds that never ran.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: String,
    pub version: String,
    pub payload: String,
}

/// What a running build records about a step along with its events (see
/// `build_steps` in the migrations): written in the same transaction as
/// the events around it, so the two never disagree after a crash.
#[derive(Debug, Clone, PartialEq)]
pub enum StepRecord {
    /// The step announced itself (its start events are stored).
    Started { plan_id: String },
    /// Its output up to these offsets is stored as events.
    Progress { plan_id: String, stdout: u64, stderr: u64 },
    /// It ended; `result` (JSON, sealed like plans) says what it left behind.
    Finished { plan_id: String, result: String },
}

/// A step of a build as recorded: its progress, and its result once finished.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedStep {
    pub plan_id: String,
    pub stdout_offset: u64,
    pub stderr_offset: u64,
    /// The result of a finished step; `None` while it runs.
    pub result: Option<String>,
}

#[derive(sqlx::FromRow)]
struct StepRow {
    plan_id: String,
    finished: bool,
    stdout_offset: i64,
    stderr_offset: i64,
    result: Option<String>,
    nonce: Option<String>,
}

/// Rows per INSERT: well under every engine's limit on bound parameters.
const INSERT_BATCH: usize = 500;

impl Db {
    /// The number the next event of a build gets.
    pub async fn next_event_id(&self, build_id: i64) -> DbResult<i64> {
        let next: Option<i64> = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT event_seq FROM builds WHERE id = $1"
        ).bind(build_id).fetch_optional(pool).await)?;
        Ok(next.unwrap_or(0))
    }

    /// Appends events (numbered by the caller, in order) and step records
    /// under `lease`, and with `final_status` also ends the build, in one
    /// transaction. [`DbError::LeaseLost`] when the lease is no longer the
    /// caller's. Writing the same batch again is harmless: a retry after a
    /// commit whose answer was lost must not fail on what it already wrote.
    pub async fn append_events(
        &self,
        lease: &BuildLease,
        events: &[StoredEvent],
        steps: &[StepRecord],
        final_status: Option<BuildStatus>,
    ) -> DbResult<()> {
        debug_assert!(final_status.is_none_or(BuildStatus::is_final));
        if events.is_empty() && steps.is_empty() {
            return Ok(());
        }
        let next_event = match events.last() {
            Some(last) => last.event_id + 1,
            None => self.next_event_id(lease.build_id).await?,
        };
        let mut sealed = Vec::with_capacity(steps.len());
        for step in steps {
            sealed.push(match step {
                StepRecord::Finished { result, .. } => Some(self.seal(result)?),
                _ => None,
            });
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let fenced = sqlx::query(
                "UPDATE builds SET event_seq = $1
                 WHERE id = $2 AND lease_owner = $3 AND lease_epoch = $4 AND NOT completed"
            )
            .bind(next_event)
            .bind(lease.build_id)
            .bind(&lease.owner)
            .bind(lease.epoch)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if fenced == 0 {
                return Err(DbError::LeaseLost { build_id: lease.build_id });
            }
            for chunk in events.chunks(INSERT_BATCH) {
                let mut query = sqlx::query(AssertSqlSafe(insert_events(chunk.len()))).bind(lease.build_id);
                for event in chunk {
                    query = query.bind(event.event_id).bind(&event.kind).bind(&event.version).bind(&event.payload);
                }
                query.execute(&mut *tx).await?;
            }
            for (step, sealed) in steps.iter().zip(&sealed) {
                let query = match step {
                    StepRecord::Started { plan_id } => sqlx::query(
                        "INSERT INTO build_steps (build_id, plan_id) VALUES ($1, $2)
                         ON CONFLICT (build_id, plan_id) DO NOTHING"
                    ).bind(lease.build_id).bind(plan_id),
                    StepRecord::Progress { plan_id, stdout, stderr } => sqlx::query(
                        "INSERT INTO build_steps (build_id, plan_id, stdout_offset, stderr_offset) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (build_id, plan_id) DO UPDATE SET stdout_offset = $3, stderr_offset = $4"
                    ).bind(lease.build_id).bind(plan_id).bind(*stdout as i64).bind(*stderr as i64),
                    StepRecord::Finished { plan_id, .. } => {
                        let (result, nonce) = sealed.clone().unwrap_or_default();
                        sqlx::query(
                            "INSERT INTO build_steps (build_id, plan_id, finished, result, nonce) VALUES ($1, $2, TRUE, $3, $4)
                             ON CONFLICT (build_id, plan_id) DO UPDATE SET finished = TRUE, result = $3, nonce = $4"
                        ).bind(lease.build_id).bind(plan_id).bind(result).bind(nonce)
                    }
                };
                query.execute(&mut *tx).await?;
            }
            if let Some(status) = final_status {
                sqlx::query("UPDATE builds SET status = $1, end_time = $2, completed = TRUE WHERE id = $3")
                    .bind(status.as_str()).bind(now()).bind(lease.build_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Ends a build that never began running (pending, or started but not
    /// yet taken up) with `status`, appending `events` after any it has.
    /// False when it had begun running or had ended: then it is not ours.
    pub async fn end_unstarted_build(&self, build_id: i64, status: BuildStatus, events: &[NewEvent]) -> DbResult<bool> {
        debug_assert!(status.is_final());
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let first: Option<i64> = sqlx::query_scalar(
                "UPDATE builds SET status = $1, end_time = $2, completed = TRUE, event_seq = event_seq + $3
                 WHERE id = $4 AND NOT completed AND start_time IS NULL
                 RETURNING event_seq - $3"
            )
            .bind(status.as_str())
            .bind(now())
            .bind(events.len() as i64)
            .bind(build_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(first) = first else { return Ok(false) };
            if !events.is_empty() {
                let mut query = sqlx::query(AssertSqlSafe(insert_events(events.len()))).bind(build_id);
                for (offset, event) in events.iter().enumerate() {
                    query = query.bind(first + offset as i64).bind(&event.kind).bind(&event.version).bind(&event.payload);
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// What a build's steps recorded so far ([`StepRecord`]), by plan id.
    pub async fn recorded_steps(&self, build_id: i64) -> DbResult<Vec<RecordedStep>> {
        let rows: Vec<StepRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT plan_id, finished, stdout_offset, stderr_offset, result, nonce FROM build_steps WHERE build_id = $1"
        ).bind(build_id).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|row| {
                let result = match (row.finished, row.result) {
                    (true, Some(result)) => Some(self.open(result, row.nonce)?),
                    _ => None,
                };
                Ok(RecordedStep {
                    plan_id: row.plan_id,
                    stdout_offset: row.stdout_offset as u64,
                    stderr_offset: row.stderr_offset as u64,
                    result,
                })
            })
            .collect()
    }

    /// Up to `limit` events of a build numbered `from` or later, in order.
    pub async fn build_events(&self, build_id: i64, from: i64, limit: i64) -> DbResult<Vec<StoredEvent>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT event_id, type, version, payload FROM build_events
             WHERE build_id = $1 AND event_id >= $2 ORDER BY event_id LIMIT $3"
        ).bind(build_id).bind(from).bind(limit).fetch_all(pool).await)?)
    }
}

/// `INSERT` of `rows` events of the build bound as `$1`, each row four
/// more parameters (number, type, version, payload) from `$2` on.
fn insert_events(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|i| {
            let base = i * 4 + 2;
            format!("($1, ${}, ${}, ${}, ${})", base, base + 1, base + 2, base + 3)
        })
        .collect();
    format!(
        "INSERT INTO build_events (build_id, event_id, type, version, payload) VALUES {}
         ON CONFLICT (build_id, event_id) DO NOTHING",
        values.join(", ")
    )
}
