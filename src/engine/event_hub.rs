//! Fan-out of build events to watchers. Events reach the hub only after
//! they are stored, so a watcher can always fall back to the database: it
//! reads what it missed there and takes new events from the hub.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::db::StoredEvent;

/// Enough for bursts of log lines; a watcher that falls further behind
/// re-reads the gap from the database.
const CHANNEL_CAPACITY: usize = 1024;

#[derive(Debug, Clone)]
pub enum HubMessage {
    /// Events just stored, in order.
    Events(Arc<Vec<StoredEvent>>),
    /// New events exist in the database (written by another atc node).
    Stored,
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

    fn sender(&self, build_id: i64) -> broadcast::Sender<HubMessage> {
        let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        channels.entry(build_id).or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0).clone()
    }

    /// Subscribe before reading the database, so nothing falls in between.
    pub fn subscribe(&self, build_id: i64) -> broadcast::Receiver<HubMessage> {
        self.sender(build_id).subscribe()
    }

    pub fn publish(&self, build_id: i64, message: HubMessage) {
        let finished = matches!(message, HubMessage::Finished);
        // No receivers is fine: nobody is watching.
        let _ = self.sender(build_id).send(message);
        if finished {
            let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            channels.remove(&build_id);
        }
    }

    /// Drops the channel of a finished build once nobody but the caller
    /// watches it (a watcher that subscribed after the build had finished).
    pub fn release_finished(&self, build_id: i64) {
        let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if channels.get(&build_id).is_some_and(|sender| sender.receiver_count() <= 1) {
            channels.remove(&build_id);
        }
    }

    /// Builds with a channel (someone watching, or events flowing).
    pub fn active_builds(&self) -> usize {
        self.channels.lock().map(|c| c.len()).unwrap_or(0)
    }
}
