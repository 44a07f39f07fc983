//! The collector component: removes what nothing needs any more (expired
//! tokens and logins, cleared task caches, expired artifacts, steps of
//! builds that ended). Each collector is one concern; the component runs
//! them in turn.

use std::sync::Arc;
use std::time::Duration;

use crate::component::{Component, ComponentFuture, TickError};
use crate::db::{Channel, Db};
use crate::runtime::{Artifact, Runtime};

/// How long uploaded inputs and downloadable outputs of one-off builds
/// stay: long enough for `fly execute` to fetch them, as in Concourse.
pub const ARTIFACT_TTL: Duration = Duration::from_secs(12 * 3600);

/// How long every node's collector keeps deleting a cleared task cache.
const CLEARED_CACHE_RETENTION_SECONDS: i64 = 24 * 3600;

pub struct Collector {
    db: Db,
    runtime: Arc<dyn Runtime>,
    artifact_ttl: Duration,
}

impl Collector {
    pub fn new(db: Db, runtime: Arc<dyn Runtime>, artifact_ttl: Duration) -> Collector {
        Collector { db, runtime, artifact_ttl }
    }

    /// Access tokens past their expiry can never be used again.
    async fn collect_expired_tokens(&self) -> Result<(), TickError> {
        let removed = self.db.delete_expired_access_tokens().await?;
        if removed > 0 {
            tracing::debug!(removed, "removed expired access tokens");
        }
        Ok(())
    }

    /// Browser logins nobody finished in time can never be finished.
    async fn collect_expired_login_requests(&self) -> Result<(), TickError> {
        let removed = self.db.delete_expired_login_requests().await?;
        if removed > 0 {
            tracing::debug!(removed, "removed expired login requests");
        }
        Ok(())
    }

    /// Files of task caches cleared in the last day: a cache a step held
    /// while it was cleared comes back when the step ends, so this asks
    /// again on every pass until the record is forgotten.
    async fn collect_cleared_task_caches(&self) -> Result<(), TickError> {
        let since = crate::db::now() - CLEARED_CACHE_RETENTION_SECONDS;
        let keys = self.db.cleared_task_cache_keys(since).await?;
        if !keys.is_empty() {
            self.runtime.remove_caches(keys).await?;
        }
        self.db.forget_cleared_task_caches(since).await?;
        Ok(())
    }

    /// Artifacts recorded for `fly execute` past their time: the files go
    /// first, then the record, so a failed release is tried again.
    async fn collect_expired_artifacts(&self) -> Result<(), TickError> {
        let cutoff = crate::db::now() - i64::try_from(self.artifact_ttl.as_secs()).unwrap_or(i64::MAX);
        let expired = self.db.artifacts_recorded_by(cutoff).await?;
        for record in &expired {
            self.runtime.release(vec![Artifact { id: record.handle.clone() }]).await?;
            self.db.delete_artifact(record.id).await?;
        }
        if !expired.is_empty() {
            tracing::debug!(removed = expired.len(), "removed expired artifacts");
        }
        Ok(())
    }
}

impl Collector {
    /// Steps the runtime still has for builds that ended (or are gone): a
    /// build normally stops its steps itself, but not when atc died between
    /// recording a step's end and stopping it. Steps of running builds stay,
    /// whichever node runs them now: they may still be attached to.
    /// A pass that stopped any is a `collector.reap` span.
    async fn collect_steps_of_ended_builds(&self) -> Result<(), TickError> {
        let started = std::time::SystemTime::now();
        let mut steps_stopped = 0;
        for step in self.runtime.list().await? {
            let Some(build_id) = step.metadata.build_id else { continue };
            let ended = self.db.find_build(build_id).await?.is_none_or(|build| build.completed);
            if ended {
                tracing::debug!(step = %step.handle, build_id, "stopping a step of a build that ended");
                self.runtime.stop(&step.handle, crate::engine::step_process::STOP_GRACE_PERIOD).await?;
                steps_stopped += 1;
            }
        }
        if steps_stopped > 0 {
            crate::telemetry::spans::ReaperPass { started, steps_stopped }.record();
        }
        Ok(())
    }

    /// A build's own storage (a claim per build on Kubernetes) once the
    /// build ended (or is gone) and none of its artifacts is kept for `fly
    /// execute` any more; never a running build's.
    async fn collect_storage_of_ended_builds(&self) -> Result<(), TickError> {
        for build_id in self.runtime.build_storage().await? {
            let ended = self.db.find_build(build_id).await?.is_none_or(|build| build.completed);
            if ended && self.db.build_artifacts(build_id).await?.is_empty() {
                tracing::debug!(build_id, "removing the storage of a build that ended");
                self.runtime.remove_build_storage(build_id).await?;
            }
        }
        Ok(())
    }
}

impl Component for Collector {
    fn name(&self) -> &'static str {
        "collector"
    }

    fn wake_channel(&self) -> Option<Channel> {
        Some(Channel::Collector)
    }

    fn tick(&self) -> ComponentFuture<'_> {
        Box::pin(async move {
            // The collector's interval samples the workers too.
            let workers = self.runtime.workers().await;
            let busy = workers.iter().filter(|w| w.active_containers > 0).count() as i64;
            crate::metric::WorkersCounted { state: "busy", count: busy }.emit();
            crate::metric::WorkersCounted { state: "available", count: workers.len() as i64 - busy }.emit();
            let containers = workers.iter().map(|w| w.active_containers as i64).sum();
            let volumes = workers.iter().map(|w| w.active_volumes as i64).sum();
            crate::metric::RuntimeResources { containers, volumes }.emit();
            self.collect_expired_tokens().await?;
            self.collect_expired_login_requests().await?;
            self.collect_cleared_task_caches().await?;
            self.collect_steps_of_ended_builds().await?;
            self.collect_storage_of_ended_builds().await?;
            self.collect_expired_artifacts().await
        })
    }
}
