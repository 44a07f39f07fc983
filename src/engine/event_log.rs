//! Writing a running build's events: redacted, numbered in order, stored
//! in batches, then handed to the hub for watchers.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::event::BuildEvent;
use super::event_hub::{EventHub, HubMessage};
use super::redaction::Redactor;
use crate::db::{Db, StoredEvent};

/// Most events stored in one database write.
const MAX_BATCH: usize = 512;

enum Command {
    Event(BuildEvent),
    Flush(oneshot::Sender<()>),
}

/// The writer of one build's events. Cheap to clone; every clone appends
/// to the same ordered log.
#[derive(Clone)]
pub struct EventLog {
    commands: mpsc::UnboundedSender<Command>,
    /// The build's secrets, kept out of every event this log writes.
    redactor: Redactor,
}

impl EventLog {
    /// Starts the writer; numbering continues after events already stored
    /// (a build picked up again after a restart).
    pub async fn open(db: Db, hub: Arc<EventHub>, build_id: i64) -> crate::db::DbResult<EventLog> {
        let next_id = db.next_event_id(build_id).await?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let redactor = Redactor::default();
        tokio::spawn(write_loop(db, hub, build_id, next_id, redactor.clone(), receiver));
        Ok(EventLog { commands, redactor })
    }

    /// Where the build registers the secrets its events must not show.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn emit(&self, event: BuildEvent) {
        // The writer outlives every sender; a send only fails during shutdown.
        let _ = self.commands.send(Command::Event(event));
    }

    /// Waits until every event emitted so far is stored and published.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(
    db: Db,
    hub: Arc<EventHub>,
    build_id: i64,
    mut next_id: i64,
    redactor: Redactor,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut batch: Vec<StoredEvent> = Vec::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = commands.recv().await {
        let mut next = Some(first);
        // Take whatever else is already queued, so a burst costs one write.
        while let Some(command) = next {
            match command {
                Command::Event(event) => {
                    batch.push(StoredEvent {
                        event_id: next_id,
                        kind: event.kind().to_string(),
                        version: event.version().to_string(),
                        // Redacted as late as possible: a secret registered
                        // after the event was emitted is still caught.
                        payload: redactor.redact_json(event.payload()).to_string(),
                    });
                    next_id += 1;
                }
                Command::Flush(done) => flushes.push(done),
            }
            next = if batch.len() < MAX_BATCH { commands.try_recv().ok() } else { None };
        }
        if !batch.is_empty() {
            let events = std::mem::take(&mut batch);
            if let Err(err) = store_with_retry(&db, build_id, &events).await {
                tracing::error!(build_id, error = %err, "lost build events: the database refused them");
            } else {
                hub.publish(build_id, HubMessage::Events(Arc::new(events)));
            }
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// A transient database error should not cost a build its log.
async fn store_with_retry(db: &Db, build_id: i64, events: &[StoredEvent]) -> crate::db::DbResult<()> {
    let mut delay = std::time::Duration::from_millis(50);
    let mut attempt = 1;
    loop {
        match db.append_events(build_id, events).await {
            Ok(()) => return Ok(()),
            Err(err) if attempt >= 5 => return Err(err),
            Err(err) => {
                tracing::warn!(build_id, attempt, error = %err, "retrying build event write");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
        }
    }
}
