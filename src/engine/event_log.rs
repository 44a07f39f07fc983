//! Writing a running build's events: redacted, numbered in order, stored
//! in batches under the build's lease, then handed to this node's hub and
//! announced to every node's watchers (`event_notice.rs`).
//! What the build's steps record about themselves (`db::StepRecord`) goes
//! the same way, in order with the events; the final status is written
//! with the last batch, in the same transaction.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::event::BuildEvent;
use super::event_hub::{EventHub, HubMessage};
use super::event_notice::BatchAnnouncer;
use super::redaction::Redactor;
use crate::db::{BuildLease, BuildStatus, Db, DbError, DbResult, StepRecord, StoredEvent};

/// Most events stored in one database write.
const MAX_BATCH: usize = 512;

/// Longest pause between attempts to store events while the database is
/// unreachable: the events wait in memory, so the pause only bounds how
/// late they arrive once it is back.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(1);

enum Command {
    /// Events and step records stored in the same transaction.
    Write(Vec<BuildEvent>, Vec<StepRecord>),
    Flush(oneshot::Sender<()>),
    /// The final status, stored with the events before it; answers whether
    /// it was stored.
    Finish(BuildStatus, oneshot::Sender<DbResult<()>>),
}

/// The writer of one build's events. Cheap to clone; every clone appends
/// to the same ordered log.
#[derive(Clone)]
pub struct EventLog {
    commands: mpsc::UnboundedSender<Command>,
    lease_lost: CancellationToken,
    /// The build's secrets, kept out of every event this log writes.
    redactor: Redactor,
}

impl EventLog {
    /// Starts the writer for the build `lease` names; numbering continues
    /// after events already stored (a build taken over from another node).
    /// `lease_lost` is cancelled by whoever finds the lease gone first: a
    /// write here, or the tracker's renewal; from then on nothing is stored.
    pub async fn open(
        db: Db,
        hub: Arc<EventHub>,
        lease: BuildLease,
        lease_lost: CancellationToken,
        redactor: Redactor,
    ) -> DbResult<EventLog> {
        let next_id = db.next_event_id(lease.build_id).await?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let announcer = BatchAnnouncer::start(db.clone(), lease.build_id);
        let writer =
            Writer { db, hub, announcer, lease, next_id, lease_lost: lease_lost.clone(), redactor: redactor.clone() };
        tokio::spawn(writer.run(receiver));
        Ok(EventLog { commands, lease_lost, redactor })
    }

    /// Where the build registers the secrets its events must not show.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn emit(&self, event: BuildEvent) {
        self.write(vec![event], Vec::new());
    }

    /// Stores `events` and `records` together: a crash leaves both or neither.
    pub fn write(&self, events: Vec<BuildEvent>, records: Vec<StepRecord>) {
        // The writer outlives every sender; a send only fails during shutdown.
        let _ = self.commands.send(Command::Write(events, records));
    }

    /// Waits until every event emitted so far is stored and published.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// Ends the build: its `status` event and the build's final status are
    /// stored together with whatever was emitted before. Nothing emitted
    /// afterwards is stored.
    pub async fn finish(&self, status: BuildStatus) -> DbResult<()> {
        let (done, wait) = oneshot::channel();
        self.commands
            .send(Command::Finish(status, done))
            .map_err(|_| DbError::Invalid("the build's event writer has stopped".into()))?;
        wait.await.map_err(|_| DbError::Invalid("the build's event writer has stopped".into()))?
    }

    /// Whether the build's lease was found lost: it must stop here, silently.
    pub fn lease_lost(&self) -> bool {
        self.lease_lost.is_cancelled()
    }

    /// Cancelled once the lease is found lost: what the build started in the
    /// runtime then belongs to the node that took it over.
    pub fn handed_over(&self) -> CancellationToken {
        self.lease_lost.clone()
    }
}

struct Writer {
    db: Db,
    hub: Arc<EventHub>,
    announcer: BatchAnnouncer,
    lease: BuildLease,
    next_id: i64,
    lease_lost: CancellationToken,
    redactor: Redactor,
}

impl Writer {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut batch: Vec<StoredEvent> = Vec::new();
        let mut records: Vec<StepRecord> = Vec::new();
        let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
        let mut finish: Option<(BuildStatus, oneshot::Sender<DbResult<()>>)> = None;
        let mut finished = false;
        while let Some(first) = commands.recv().await {
            let mut next = Some(first);
            // Take whatever else is already queued, so a burst costs one write.
            while let Some(command) = next {
                match command {
                    Command::Write(..) if finished || finish.is_some() => {}
                    Command::Write(events, step_records) => {
                        batch.extend(events.iter().map(|event| self.number(event)));
                        add_records(&mut records, step_records);
                    }
                    Command::Flush(done) => flushes.push(done),
                    Command::Finish(_, done) if finished || finish.is_some() => {
                        let _ = done.send(Err(DbError::Invalid("the build has already ended".into())));
                    }
                    Command::Finish(status, done) => {
                        let event = BuildEvent::Status { status: status.as_str().into(), time: crate::db::now() };
                        batch.push(self.number(&event));
                        finish = Some((status, done));
                    }
                }
                next = if batch.len() < MAX_BATCH && finish.is_none() { commands.try_recv().ok() } else { None };
            }
            let status = finish.as_ref().map(|(status, _)| *status);
            let stored = self.store(std::mem::take(&mut batch), std::mem::take(&mut records), status).await;
            if let Some((_, done)) = finish.take() {
                finished = true;
                let _ = done.send(stored);
            }
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
    }

    fn number(&mut self, event: &BuildEvent) -> StoredEvent {
        let stored = StoredEvent {
            event_id: self.next_id,
            kind: event.kind().to_string(),
            version: event.version().to_string(),
            // Redacted as late as possible: a secret registered after the
            // event was emitted is still caught.
            payload: self.redactor.redact_json(event.payload()).to_string(),
        };
        self.next_id += 1;
        stored
    }

    /// Stores a batch, retrying for as long as the database is unreachable
    /// (a build keeps its log through a database restart); publishes and
    /// announces it once stored. After the lease is lost nothing is stored
    /// any more.
    async fn store(
        &self,
        events: Vec<StoredEvent>,
        records: Vec<StepRecord>,
        final_status: Option<BuildStatus>,
    ) -> DbResult<()> {
        if events.is_empty() && records.is_empty() {
            return Ok(());
        }
        if self.lease_lost.is_cancelled() {
            return Err(DbError::LeaseLost { build_id: self.lease.build_id });
        }
        let build_id = self.lease.build_id;
        let mut delay = Duration::from_millis(50);
        let mut attempt = 1;
        loop {
            match self.db.append_events(&self.lease, &events, &records, final_status).await {
                Ok(()) => break,
                Err(err @ DbError::LeaseLost { .. }) => {
                    tracing::warn!(build_id, "this node lost the build's lease: its events are no longer stored here");
                    self.lease_lost.cancel();
                    return Err(err);
                }
                Err(err) if !err.is_transient() => {
                    tracing::error!(build_id, error = %err, "lost build events: the database refused them");
                    return Err(err);
                }
                Err(err) => {
                    tracing::warn!(build_id, attempt, error = %err, "retrying build event write");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_RETRY_DELAY);
                    attempt += 1;
                }
            }
        }
        let stored_before = events.last().map(|last| last.event_id + 1);
        self.hub.publish(build_id, HubMessage::Events(Arc::new(events)));
        if let Some(before) = stored_before {
            self.announcer.stored(before);
        }
        Ok(())
    }
}

/// Adds `new` to a batch's records; a step's progress replaces its earlier
/// progress in the same batch (only the last offsets matter).
fn add_records(batch: &mut Vec<StepRecord>, new: Vec<StepRecord>) {
    for record in new {
        if let StepRecord::Progress { plan_id, .. } = &record
            && let Some(earlier) = batch
                .iter_mut()
                .rev()
                .take_while(|r| !matches!(r, StepRecord::Started { plan_id: p } | StepRecord::Finished { plan_id: p, .. } if p == plan_id))
                .find(|r| matches!(r, StepRecord::Progress { plan_id: p, .. } if p == plan_id))
        {
            *earlier = record;
            continue;
        }
        batch.push(record);
    }
}
