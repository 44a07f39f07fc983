//! Running builds: plans, steps, hooks, artifacts and build events.

pub mod compile;
pub mod event;
pub mod event_hub;
pub mod event_log;
pub mod event_notice;
pub mod exec;
pub mod journal;
pub mod plan;
pub mod redaction;
pub mod runner;
pub mod span_facts;
pub mod state;
pub mod step_log;
pub mod step_process;
pub mod tracker;
pub mod uploads;
pub mod waiting;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::creds::{Managed, SecretPolicy};
use crate::db::Db;
use crate::runtime::Runtime;
use event_hub::EventHub;
use runner::RunnerContext;
use tracker::{BuildTracker, LeaseSettings, TrackerComponent};

/// The build engine as the rest of atc sees it: the runtime steps run on,
/// the hub watchers read events from, and the tracker running builds.
pub struct Engine {
    pub db: Db,
    runtime: Arc<dyn Runtime>,
    pub hub: Arc<EventHub>,
    /// Where builds' `((vars))` come from.
    pub credentials: Arc<Managed>,
    /// Unix seconds the engine started (the worker's start time).
    pub started_at: i64,
    tracker: Arc<BuildTracker>,
}

impl Engine {
    pub fn new(
        db: Db,
        runtime: Arc<dyn Runtime>,
        external_url: String,
        credentials: Arc<Managed>,
        secret_policy: SecretPolicy,
        redact_secrets: bool,
        leases: LeaseSettings,
    ) -> Arc<Engine> {
        let hub = Arc::new(EventHub::new());
        let tracker = BuildTracker::new(
            RunnerContext {
                db: db.clone(),
                runtime: runtime.clone(),
                hub: hub.clone(),
                external_url,
                credentials: credentials.clone(),
                secret_policy,
                redact_secrets,
            },
            leases,
        );
        Arc::new(Engine { db, runtime, hub, credentials, started_at: crate::db::now(), tracker })
    }

    /// Starts the build tracker, its abort listener and its lease renewal,
    /// and hands the hub the announcements of new build events.
    pub fn spawn(self: &Arc<Self>, interval: Duration, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
        vec![
            crate::component::spawn(
                Arc::new(TrackerComponent(self.tracker.clone())),
                self.db.clone(),
                interval,
                shutdown.clone(),
            ),
            self.tracker.spawn_abort_listener(shutdown.clone()),
            self.tracker.spawn_lease_renewal(shutdown.clone()),
            event_notice::spawn_listener(&self.db, self.hub.clone(), shutdown),
        ]
    }

    /// The workers this node's runtime offers: `fly workers`.
    pub async fn workers(&self) -> Vec<crate::runtime::WorkerInfo> {
        self.runtime.workers().await
    }

    /// The steps this node's runtime has: `fly containers`.
    pub async fn steps(&self) -> Result<Vec<crate::runtime::StepInfo>, crate::runtime::RuntimeError> {
        self.runtime.list().await
    }

    /// Runs another process in the step `handle` (`fly intercept`) and
    /// answers its exit code.
    pub async fn exec(
        &self,
        handle: &crate::runtime::StepHandle,
        process: crate::runtime::ProcessSpec,
        io: crate::runtime::ExecIo,
    ) -> Result<i32, crate::runtime::RuntimeError> {
        self.runtime.exec(handle, process, io).await
    }

    /// Stops the builds this node runs (they end as errored).
    pub async fn stop(&self) {
        self.tracker.stop().await;
    }
}
