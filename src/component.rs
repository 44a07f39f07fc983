//! Background components (build tracker, scheduler, checker, collector):
//! each runs on an interval and whenever its channel is notified, never
//! twice at once on one node, and can be paused through the API. Whatever
//! must not run on two nodes at once takes its own finer-grained locks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::db::{Channel, Db, DbError};
use crate::runtime::RuntimeError;

pub type ComponentFuture<'a> = Pin<Box<dyn Future<Output = Result<(), TickError>> + Send + 'a>>;

/// Why a round of a component's work stopped short; the next tick tries again.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

pub trait Component: Send + Sync + 'static {
    /// The name `GET /api/v1/components` shows (`scheduler`, `tracker`, ...).
    fn name(&self) -> &'static str;
    /// The notification that wakes it early, if any.
    fn wake_channel(&self) -> Option<Channel>;
    /// Does one round of work.
    fn tick(&self) -> ComponentFuture<'_>;
}

/// Runs `component` until `shutdown`: at once, then every `interval` and
/// on every notification (bursts of notifications coalesce into one tick).
pub fn spawn(component: Arc<dyn Component>, db: Db, interval: Duration, shutdown: CancellationToken) -> JoinHandle<()> {
    let mut wake = component.wake_channel().map(|channel| db.subscribe(channel));
    tokio::spawn(async move {
        let name = component.name();
        if let Err(err) = db.register_component(name, interval).await {
            tracing::warn!(component = name, error = %err, "cannot register component");
        }
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
                _ = async {
                    match wake.as_mut() {
                        Some(wake) => { let _ = wake.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {
                    // Take what else is queued: one tick answers all of it.
                    if let Some(wake) = wake.as_mut() {
                        while wake.try_recv().is_ok() {}
                    }
                }
            }
            match db.component_paused(name).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(component = name, error = %err, "cannot read component state");
                    continue;
                }
            }
            if let Err(err) = component.tick().await {
                tracing::warn!(component = name, error = %err, "component tick failed");
                crate::metric::SystemErrored { component: name, error_type: "tick_failed" }.emit();
            }
            if let Err(err) = db.record_component_run(name).await {
                tracing::warn!(component = name, error = %err, "cannot record component run");
            }
        }
    })
}
