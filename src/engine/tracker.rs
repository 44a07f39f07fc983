//! The build tracker component: runs every started build exactly once
//! across atc nodes (a lock per build), stops builds when asked, and ends
//! builds orphaned by an atc that died while running them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::event::{BuildEvent, Origin};
use super::event_log::EventLog;
use super::runner::{self, RunnerContext};
use super::spans;
use crate::component::{Component, ComponentFuture};
use crate::db::{Channel, DbResult, LockKind};
use crate::telemetry::propagation;

pub struct BuildTracker {
    ctx: RunnerContext,
    /// Abort tokens of the builds this node runs.
    running: Mutex<HashMap<i64, CancellationToken>>,
    shutdown: CancellationToken,
}

impl BuildTracker {
    pub fn new(ctx: RunnerContext) -> Arc<BuildTracker> {
        Arc::new(BuildTracker { ctx, running: Mutex::new(HashMap::new()), shutdown: CancellationToken::new() })
    }

    /// Stops running builds when an abort is requested, on whichever node
    /// runs them.
    pub fn spawn_abort_listener(self: &Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let tracker = self.clone();
        let mut aborts = tracker.ctx.db.subscribe(Channel::BuildAbort);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    abort = aborts.recv() => match abort {
                        Ok(id) => {
                            if let Ok(id) = id.parse::<i64>() {
                                tracker.abort_if_running(id);
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
        })
    }

    /// Stops the component and the builds it runs (they end as errored).
    pub async fn stop(&self) {
        self.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !self.running.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn abort_if_running(&self, id: i64) {
        if let Some(token) = self.running.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            token.cancel();
        }
    }

    /// Starts every started build no node is running.
    async fn start_untracked_builds(self: &Arc<Self>) -> DbResult<()> {
        for id in self.ctx.db.started_builds().await? {
            if self.shutdown.is_cancelled() {
                break;
            }
            if self.running.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&id) {
                continue;
            }
            let Some(lock) = self.ctx.db.try_lock(LockKind::TrackingBuild, id).await? else { continue };
            let Some(build) = self.ctx.db.find_build(id).await? else { continue };
            if build.completed {
                continue;
            }
            if self.ctx.db.build_was_running(id).await? {
                // It began on a node that is gone (it held this lock).
                self.end_orphan(&build).await?;
                continue;
            }
            let abort = CancellationToken::new();
            if build.aborted {
                abort.cancel();
            }
            self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id, abort.clone());
            let tracker = self.clone();
            tokio::spawn(async move {
                let _lock = lock;
                if let Err(err) = runner::run_build(&tracker.ctx, build, abort, tracker.shutdown.clone()).await {
                    tracing::error!(build_id = id, error = %err, "build run failed");
                }
                tracker.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            });
        }
        Ok(())
    }

    async fn end_orphan(&self, build: &crate::db::Build) -> DbResult<()> {
        // The build's span died with the node; this one, its child, ends
        // the build's trace with what became of it.
        let stored = self.ctx.db.build_span_context(build.id).await?;
        let lost = stored.as_deref().map(propagation::restored_context).unwrap_or_default();
        let info = runner::build_info(build, &self.ctx.external_url);
        let facts = spans::BuildSpanFacts { info: &info, resource: None, url: None };
        spans::end_build(&spans::start_build(&facts, &lost, Vec::new()), "errored", false);
        let events = EventLog::open(self.ctx.db.clone(), self.ctx.hub.clone(), build.id).await?;
        events.emit(BuildEvent::Error {
            origin: Origin::default(),
            message: "atc restarted while this build was running; the build cannot be resumed".into(),
            time: crate::db::now(),
        });
        runner::finish(&self.ctx.db, &self.ctx.hub, &events, build, "errored").await
    }
}

/// The tracker component's tick needs the `Arc` to hand builds to tasks.
pub struct TrackerComponent(pub Arc<BuildTracker>);

impl Component for TrackerComponent {
    fn name(&self) -> &'static str {
        "tracker"
    }

    fn wake_channel(&self) -> Option<Channel> {
        Some(Channel::BuildTracker)
    }

    fn tick(&self) -> ComponentFuture<'_> {
        Box::pin(async move { Ok(self.0.start_untracked_builds().await?) })
    }
}
