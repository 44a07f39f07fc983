//! Fan-out of build events to watchers. Events reach the hub only after
//! they are stored, so a watcher can always fall back to the database: it
//! reads what it missed there and takes new events from the hub. A build
//! has a channel here only while someone on this node watches it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::db::StoredEvent;

/// Enough for bursts of log lines; a watcher that falls further behind
/// re-reads the gap from the database.
const CHANNEL_CAPACITY: usize = 1024;

#[derive(Debug, Clone)]
pub enum HubMessage {
    /// Events just stored by this node, in order.
    Events(Arc<Vec<StoredEvent>>),
    /// The build's events numbered below `before` are in the database
    /// (stored by any node; announced through the database).
    Stored { before: i64 },
    /// New events may be in the database: look.
    ReadAgain,
    /// The build finished: no event follows those already stored.
    Finished,
}

#[derive(Default)]
pub struct EventHub {
    channels: Mutex<HashMap<i64, broadcast::Sender<HubMessage>>>,
}

impl EventHub {
    pub fn new() -> EventHub {
        EventHub::default()
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<i64, broadcast::Sender<HubMessage>>> {
        self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Subscribe before reading the database, so nothing falls in between.
    pub fn subscribe(&self, build_id: i64) -> broadcast::Receiver<HubMessage> {
        // Under the lock: a publish cannot drop the channel in between.
        let mut channels = self.channels();
        channels.entry(build_id).or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0).subscribe()
    }

    /// Tells the build's watchers here, if any.
    pub fn publish(&self, build_id: i64, message: HubMessage) {
        let finished = matches!(message, HubMessage::Finished);
        let Some(sender) = self.channels().get(&build_id).cloned() else { return };
        // No receivers is fine: the last watcher just left.
        let _ = sender.send(message);
        if finished || sender.receiver_count() == 0 {
            let mut channels = self.channels();
            // Checked again under the lock: someone may have subscribed since.
            if finished || channels.get(&build_id).is_some_and(|sender| sender.receiver_count() == 0) {
                channels.remove(&build_id);
            }
        }
    }

    /// Tells the watchers of every build here.
    pub fn publish_to_all(&self, message: HubMessage) {
        let mut channels = self.channels();
        channels.retain(|_, sender| sender.send(message.clone()).is_ok());
    }

    /// Drops the channel of a finished build once nobody but the caller
    /// watches it (a watcher that subscribed after the build had finished).
    pub fn release_finished(&self, build_id: i64) {
        let mut channels = self.channels();
        if channels.get(&build_id).is_some_and(|sender| sender.receiver_count() <= 1) {
            channels.remove(&build_id);
        }
    }

    /// Builds with a channel (someone watching).
    pub fn active_builds(&self) -> usize {
        self.channels().len()
    }
}
