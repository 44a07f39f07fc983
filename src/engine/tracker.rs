//! The build tracker component: runs every started build on exactly one
//! atc node at a time, through a lease per build (`db::leases`). The node
//! running a build renews its lease; a build whose lease ran out (its node
//! died, stopped or lost the database for longer than the lease) is taken
//! over by another node (or by atc itself after a restart) and carried on
//! where its journal says it was (`journal.rs`); the old node, should it
//! come back, finds its writes fenced off and stops the build silently.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::runner::{self, RunnerContext};
use crate::db::{Build, BuildLease, Channel, DbResult};

/// How this node holds leases on the builds it runs.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// This node's name in leases: unique per atc process.
    pub owner: String,
    /// How long a lease lasts without renewal: the longest a build waits
    /// for another node when its own node is gone.
    pub duration: Duration,
}

impl LeaseSettings {
    /// A name no other atc process has: host, process id and a random tag
    /// (a restarted process must not renew its predecessor's leases).
    pub fn for_this_process(duration: Duration) -> LeaseSettings {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_string())
            .unwrap_or_else(|_| "atc".into());
        let owner = format!("{host}/{}/{:08x}", std::process::id(), rand::random::<u32>());
        LeaseSettings { owner, duration }
    }

    /// How often leases are renewed: three chances before one runs out.
    pub fn renew_interval(&self) -> Duration {
        self.duration / 3
    }

    fn duration_ms(&self) -> i64 {
        self.duration.as_millis() as i64
    }
}

/// A build this node runs.
struct RunningBuild {
    abort: CancellationToken,
    /// Cancelled when the lease is found lost, by the renewal or a write.
    lease_lost: CancellationToken,
    epoch: i64,
}

pub struct BuildTracker {
    ctx: RunnerContext,
    leases: LeaseSettings,
    running: Mutex<HashMap<i64, RunningBuild>>,
    shutdown: CancellationToken,
}

impl BuildTracker {
    pub fn new(ctx: RunnerContext, leases: LeaseSettings) -> Arc<BuildTracker> {
        Arc::new(BuildTracker { ctx, leases, running: Mutex::new(HashMap::new()), shutdown: CancellationToken::new() })
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

    /// Renews the leases of the builds this node runs until `shutdown`, and
    /// stops those whose lease another node took.
    pub fn spawn_lease_renewal(self: &Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let tracker = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(tracker.leases.renew_interval());
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    // Builds stopping at shutdown still write their end.
                    _ = shutdown.cancelled(), if tracker.running_count() == 0 => break,
                    _ = ticker.tick() => tracker.renew_leases().await,
                }
            }
        })
    }

    async fn renew_leases(&self) {
        // Judged are only the builds run before the renewal: one taken up
        // while it was under way is held, but not among what it returned.
        let before: Vec<(i64, i64)> = {
            let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running.iter().map(|(id, build)| (*id, build.epoch)).collect()
        };
        if before.is_empty() {
            return;
        }
        let held = match self.ctx.db.renew_build_leases(&self.leases.owner, now_ms(), self.leases.duration_ms()).await {
            Ok(held) => held,
            Err(err) => {
                // Nothing is lost yet: the lease lasts, and writes wait.
                tracing::warn!(error = %err, "cannot renew build leases");
                return;
            }
        };
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        for lost in before.iter().filter(|build| !held.contains(build)) {
            let (id, epoch) = *lost;
            let Some(build) = running.get(&id).filter(|build| build.epoch == epoch) else { continue };
            if !build.lease_lost.is_cancelled() {
                tracing::warn!(build_id = id, "another node took over this build: stopping it here");
                build.lease_lost.cancel();
            }
        }
    }

    fn running_count(&self) -> usize {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Stops the component and the builds it runs (they end as errored).
    pub async fn stop(&self) {
        self.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.running_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn abort_if_running(&self, id: i64) {
        if let Some(build) = self.running.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            build.abort.cancel();
        }
    }

    /// Takes up every started build no node holds: runs the new ones and
    /// carries on with those whose node is gone, where they were.
    async fn start_untracked_builds(self: &Arc<Self>) -> DbResult<()> {
        for id in self.ctx.db.started_builds().await? {
            if self.shutdown.is_cancelled() {
                break;
            }
            if self.running.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&id) {
                continue;
            }
            let taken =
                self.ctx.db.take_build_lease(id, &self.leases.owner, now_ms(), self.leases.duration_ms()).await?;
            let Some(taken) = taken else { continue };
            let Some(build) = self.ctx.db.find_build(id).await? else { continue };
            let resumed = taken.was_running.then(|| runner::Resumed { previous_owner: taken.previous_owner.clone() });
            self.run(build, taken.lease, resumed);
        }
        Ok(())
    }

    fn run(self: &Arc<Self>, build: Build, lease: BuildLease, resumed: Option<runner::Resumed>) {
        let id = build.id;
        let abort = CancellationToken::new();
        if build.aborted {
            abort.cancel();
        }
        let lease_lost = CancellationToken::new();
        let running = RunningBuild { abort: abort.clone(), lease_lost: lease_lost.clone(), epoch: lease.epoch };
        self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id, running);
        let tracker = self.clone();
        tokio::spawn(async move {
            let control = runner::BuildControl { abort, shutdown: tracker.shutdown.clone(), lease_lost };
            if let Err(err) = runner::run_build(&tracker.ctx, build, lease, control, resumed).await {
                tracing::error!(build_id = id, error = %err, "build run failed");
            }
            tracker.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        });
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The tracker component's tick needs the `Arc` to hand builds to tasks.
pub struct TrackerComponent(pub Arc<BuildTracker>);

impl crate::component::Component for TrackerComponent {
    fn name(&self) -> &'static str {
        "tracker"
    }

    fn wake_channel(&self) -> Option<Channel> {
        Some(Channel::BuildTracker)
    }

    fn tick(&self) -> crate::component::ComponentFuture<'_> {
        Box::pin(async move { Ok(self.0.start_untracked_builds().await?) })
    }
}
