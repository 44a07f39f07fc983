//! Leases on running builds: which atc node runs a build, until when, and
//! the epoch that fences its writes.
//!
//! A node takes a started build by writing itself as the owner with a
//! deadline and a bumped epoch; it renews the deadline while it runs the
//! build. Another node may take the build over only once the deadline has
//! passed. Writes of the build's events and final status carry the owner
//! and epoch they were taken with ([`BuildLease`]) and match nothing once
//! the lease moved on (`events.rs`), so a node that was cut off or stopped
//! cannot write a line after its build was handed over.

use super::{Backend, Db, DbResult, on_pool};

/// A lease held on a build: the fencing token of its writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildLease {
    pub build_id: i64,
    pub owner: String,
    pub epoch: i64,
}

/// A lease just taken, with what it says about the build's past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenLease {
    pub lease: BuildLease,
    /// The node that held the build before, if any (its lease ran out).
    pub previous_owner: Option<String>,
    /// The build had begun running under that owner.
    pub was_running: bool,
}

impl Db {
    /// Takes the lease of an unfinished build that nobody holds or whose
    /// holder let it run out. `None` when another node holds it.
    pub async fn take_build_lease(
        &self,
        build_id: i64,
        owner: &str,
        now_ms: i64,
        duration_ms: i64,
    ) -> DbResult<Option<TakenLease>> {
        let previous: Option<(Option<String>, Option<i64>)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT lease_owner, start_time FROM builds WHERE id = $1"
        ).bind(build_id).fetch_optional(pool).await)?;
        let Some((previous_owner, start_time)) = previous else { return Ok(None) };
        // The owner read above is only reported; the UPDATE decides, and it
        // names that owner so a takeover in between makes it match nothing.
        let epoch: Option<i64> = on_pool!(self, pool => sqlx::query_scalar(
            "UPDATE builds SET lease_owner = $1, lease_epoch = lease_epoch + 1, lease_deadline_ms = $2
             WHERE id = $3 AND NOT completed
               AND (lease_owner IS NULL OR (lease_owner = $4 AND lease_deadline_ms < $5))
             RETURNING lease_epoch"
        )
        .bind(owner)
        .bind(now_ms + duration_ms)
        .bind(build_id)
        .bind(previous_owner.as_deref().unwrap_or_default())
        .bind(now_ms)
        .fetch_optional(pool).await)?;
        Ok(epoch.map(|epoch| TakenLease {
            lease: BuildLease { build_id, owner: owner.to_string(), epoch },
            previous_owner,
            was_running: start_time.is_some(),
        }))
    }

    /// Pushes the deadline of every lease `owner` holds on an unfinished
    /// build; returns every lease it still holds (`(build id, epoch)`): those
    /// renewed, and those of builds that ended while their lease lasted
    /// (nothing to renew, and nobody else's). A lease missing from the
    /// answer was taken over.
    pub async fn renew_build_leases(&self, owner: &str, now_ms: i64, duration_ms: i64) -> DbResult<Vec<(i64, i64)>> {
        on_pool!(self, pool => {
            let mut held: Vec<(i64, i64)> = sqlx::query_as(
                "UPDATE builds SET lease_deadline_ms = $1 WHERE lease_owner = $2 AND NOT completed
                 RETURNING id, lease_epoch"
            ).bind(now_ms + duration_ms).bind(owner).fetch_all(pool).await?;
            let ended: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT id, lease_epoch FROM builds WHERE lease_owner = $1 AND completed AND lease_deadline_ms >= $2"
            ).bind(owner).bind(now_ms).fetch_all(pool).await?;
            held.extend(ended);
            Ok(held)
        })
    }

    /// Lets the leases of nodes that cannot be running any more run out at
    /// once, so their builds are taken over without waiting. With SQLite
    /// atc is one node, so whoever held a lease before this process
    /// started is gone; with PostgreSQL other nodes may be alive and their
    /// leases run out on their own.
    pub async fn expire_leases_of_previous_runs(&self) -> DbResult<()> {
        if self.backend() == Backend::Sqlite {
            on_pool!(self, pool => sqlx::query(
                "UPDATE builds SET lease_deadline_ms = 0 WHERE lease_owner IS NOT NULL AND NOT completed"
            ).execute(pool).await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }
}
