//! Locks that keep atc nodes from doing the same work twice (scheduling a
//! job, checking a resource). In process they are a set of held keys; with
//! PostgreSQL they are also advisory locks, held on one dedicated
//! connection per node so they die with the node. Running builds are held
//! by leases instead (`leases.rs`): a build must not change hands because
//! a connection dropped.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::Mutex as AsyncMutex;

use super::{DbError, DbResult};

/// What a lock protects; with the object's id it forms the lock key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockKind {
    SchedulingJob,
    CheckingResource,
    CheckingResourceType,
    Component,
}

impl LockKind {
    fn code(self) -> i32 {
        match self {
            LockKind::SchedulingJob => 1,
            LockKind::CheckingResource => 2,
            LockKind::CheckingResourceType => 3,
            LockKind::Component => 5,
        }
    }

    /// The `concourse.lock.type` of spans and metrics.
    pub fn name(self) -> &'static str {
        match self {
            LockKind::SchedulingJob => "scheduling_job",
            LockKind::CheckingResource => "checking_resource",
            LockKind::CheckingResourceType => "checking_resource_type",
            LockKind::Component => "component",
        }
    }
}

type Key = (i32, i32);

pub(super) struct Locks {
    held: Mutex<HashSet<Key>>,
    /// The connection holding this node's advisory locks (PostgreSQL only).
    postgres: Option<(PgConnectOptions, AsyncMutex<Option<PgConnection>>)>,
}

/// Held until dropped.
pub struct LockGuard {
    key: Key,
    locks: Arc<Locks>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let locks = self.locks.clone();
        let key = self.key;
        if locks.postgres.is_none() {
            locks.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
            return;
        }
        // The advisory unlock needs the connection: release the local claim
        // only after it, so this node cannot re-take the lock in between.
        let release = async move {
            locks.unlock_postgres(key).await;
            locks.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(release);
        }
    }
}

impl Locks {
    pub(super) fn in_process() -> Arc<Locks> {
        Arc::new(Locks { held: Mutex::new(HashSet::new()), postgres: None })
    }

    pub(super) fn postgres(options: PgConnectOptions) -> Arc<Locks> {
        Arc::new(Locks { held: Mutex::new(HashSet::new()), postgres: Some((options, AsyncMutex::new(None))) })
    }

    pub(super) async fn try_lock(self: &Arc<Self>, kind: LockKind, id: i64) -> DbResult<Option<LockGuard>> {
        // Object ids fit 32 bits for the lifetime of any realistic install;
        // advisory locks take two 32-bit keys.
        let key = (kind.code(), id as i32);
        if !self.held.lock().unwrap_or_else(|p| p.into_inner()).insert(key) {
            return Ok(None);
        }
        let guard = || LockGuard { key, locks: self.clone() };
        let Some((options, connection)) = &self.postgres else {
            return Ok(Some(guard()));
        };
        let mut connection = connection.lock().await;
        let acquired = async {
            if connection.is_none() {
                *connection = Some(PgConnection::connect_with(options).await?);
            }
            let conn = connection.as_mut().expect("connected above");
            sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1, $2)")
                .bind(key.0)
                .bind(key.1)
                .fetch_one(conn)
                .await
        }
        .await;
        match acquired {
            Ok(true) => Ok(Some(guard())),
            Ok(false) => {
                // Another node holds it.
                self.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                Ok(None)
            }
            Err(err) => {
                // A broken lock connection loses every lock it held: start over.
                *connection = None;
                self.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                Err(DbError::Sqlx(err))
            }
        }
    }

    async fn unlock_postgres(&self, key: Key) {
        let Some((_, connection)) = &self.postgres else { return };
        let mut connection = connection.lock().await;
        if let Some(conn) = connection.as_mut() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, $2)").bind(key.0).bind(key.1).execute(conn).await;
            if unlocked.is_err() {
                *connection = None;
            }
        }
    }
}
