//! Waking components: "there is new work" messages between atc nodes.
//! PostgreSQL carries them with LISTEN/NOTIFY to every node (the sender's
//! included); SQLite, with one node, carries them in process. Messages may
//! be lost (a dropped connection); components also run on an interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::broadcast;

/// The channels components listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Jobs may have new inputs or finished builds.
    Scheduler,
    /// Resources may need checking.
    Checker,
    /// Builds are ready to run.
    BuildTracker,
    /// A build (id in the payload) should be aborted.
    BuildAbort,
    /// A build (id in the payload) has new events in the database.
    BuildEvents,
    /// Something was let go (a cleared task cache) whose files can go now.
    Collector,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Scheduler,
        Channel::Checker,
        Channel::BuildTracker,
        Channel::BuildAbort,
        Channel::BuildEvents,
        Channel::Collector,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Channel::Scheduler => "atc_scheduler",
            Channel::Checker => "atc_checker",
            Channel::BuildTracker => "atc_build_tracker",
            Channel::BuildAbort => "atc_build_abort",
            Channel::BuildEvents => "atc_build_events",
            Channel::Collector => "atc_collector",
        }
    }

    fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Enough for bursts; a receiver that lags only misses wake-ups it would
/// have coalesced anyway.
const CAPACITY: usize = 256;

pub struct Notifications {
    senders: Mutex<HashMap<Channel, broadcast::Sender<String>>>,
}

impl Notifications {
    pub fn new() -> Arc<Notifications> {
        Arc::new(Notifications { senders: Mutex::new(HashMap::new()) })
    }

    fn sender(&self, channel: Channel) -> broadcast::Sender<String> {
        let mut senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        senders.entry(channel).or_insert_with(|| broadcast::channel(CAPACITY).0).clone()
    }

    pub fn subscribe(&self, channel: Channel) -> broadcast::Receiver<String> {
        self.sender(channel).subscribe()
    }

    /// Delivers to this process's subscribers.
    pub fn deliver(&self, channel: Channel, payload: &str) {
        let _ = self.sender(channel).send(payload.to_string());
    }

    /// Forwards PostgreSQL notifications to local subscribers for as long as
    /// the pool is open, reconnecting when the connection drops.
    pub fn listen_to_postgres(self: &Arc<Self>, pool: PgPool) {
        let notifications = self.clone();
        tokio::spawn(async move {
            loop {
                match PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        let names: Vec<&str> = Channel::ALL.iter().map(|c| c.name()).collect();
                        if let Err(err) = listener.listen_all(names).await {
                            tracing::warn!(error = %err, "cannot LISTEN for notifications; retrying");
                        } else {
                            loop {
                                match listener.recv().await {
                                    Ok(message) => {
                                        if let Some(channel) = Channel::from_name(message.channel()) {
                                            notifications.deliver(channel, message.payload());
                                        }
                                    }
                                    Err(sqlx::Error::PoolClosed) => return,
                                    Err(err) => {
                                        tracing::warn!(error = %err, "lost the notification connection; reconnecting");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(err) => tracing::warn!(error = %err, "cannot connect for notifications; retrying"),
                }
                if pool.is_closed() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }
}
