//! Telling every atc node that a build has new events in the database.
//! Whoever stores a build's events announces it on `Channel::BuildEvents`
//! (PostgreSQL's LISTEN/NOTIFY reaches every node, the sender's included);
//! each node hands the announcements to its hub, where the build's
//! watchers read what they lack from the database.
//!
//! The payload is `ID:NEXT` (build `ID`'s events below number `NEXT` are
//! stored), `ID` (some of its events are stored, read to find out which),
//! or empty (announcements may have been lost: every watcher reads again).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::event_hub::{EventHub, HubMessage};
use crate::db::{Channel, Db, DbResult};

/// How often an announcement the database refused is tried again; after
/// that, watchers elsewhere find the events on their next look.
const ATTEMPTS: u32 = 4;
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Announces that build `build_id` has new events (`before`: all those
/// numbered below it are stored).
pub async fn announce(db: &Db, build_id: i64, before: Option<i64>) -> DbResult<()> {
    let payload = match before {
        Some(next) => format!("{build_id}:{next}"),
        None => build_id.to_string(),
    };
    db.notify(Channel::BuildEvents, &payload).await
}

/// Announces a running build's stored batches from a task of its own, so
/// the event writer never waits for it. Batches stored while one
/// announcement is on its way are covered by the next, which names the
/// latest: one announcement per batch at most, fewer under load.
pub struct BatchAnnouncer {
    stored_before: watch::Sender<i64>,
}

impl BatchAnnouncer {
    /// The announcer of build `build_id`'s batches; its task ends once the
    /// announcer is dropped and the last batch is announced.
    pub fn start(db: Db, build_id: i64) -> BatchAnnouncer {
        let (stored_before, mut latest) = watch::channel(0);
        tokio::spawn(async move {
            while latest.changed().await.is_ok() {
                let mut delay = FIRST_RETRY_DELAY;
                for attempt in 1..=ATTEMPTS {
                    let before = *latest.borrow_and_update();
                    match announce(&db, build_id, Some(before)).await {
                        Ok(()) => break,
                        Err(err) if attempt == ATTEMPTS || !err.is_transient() => {
                            tracing::warn!(build_id, error = %err, "cannot announce new build events");
                            break;
                        }
                        Err(_) => {
                            tokio::time::sleep(delay).await;
                            delay *= 2;
                        }
                    }
                }
            }
        });
        BatchAnnouncer { stored_before }
    }

    /// Events numbered below `before` are stored: announce it soon.
    pub fn stored(&self, before: i64) {
        self.stored_before.send_replace(before);
    }
}

/// Hands this node's hub every announcement until `shutdown`, so the
/// build's watchers here look at the database; when announcements may
/// have been lost, every watcher looks.
pub fn spawn_listener(db: &Db, hub: Arc<EventHub>, shutdown: CancellationToken) -> JoinHandle<()> {
    let mut announcements = db.subscribe(Channel::BuildEvents);
    tokio::spawn(async move {
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => break,
                received = announcements.recv() => received,
            };
            match received {
                Ok(payload) => match parse(&payload) {
                    Some((build_id, Some(before))) => hub.publish(build_id, HubMessage::Stored { before }),
                    Some((build_id, None)) => hub.publish(build_id, HubMessage::ReadAgain),
                    None => hub.publish_to_all(HubMessage::ReadAgain),
                },
                Err(RecvError::Lagged(_)) => hub.publish_to_all(HubMessage::ReadAgain),
                Err(RecvError::Closed) => break,
            }
        }
    })
}

/// The build and how far its stored events reach, if the payload says.
fn parse(payload: &str) -> Option<(i64, Option<i64>)> {
    match payload.split_once(':') {
        Some((build_id, before)) => Some((build_id.parse().ok()?, Some(before.parse().ok()?))),
        None => Some((payload.parse().ok()?, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn payloads_name_the_build_and_how_far_its_events_reach() {
        assert_eq!(parse("42:1050"), Some((42, Some(1050))));
        assert_eq!(parse("42"), Some((42, None)));
        assert_eq!(parse(""), None);
        assert_eq!(parse("42:"), None);
        assert_eq!(parse("x:1"), None);
    }
}
