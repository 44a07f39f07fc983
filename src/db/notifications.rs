//! Waking components: "there is new work" messages between atc nodes.
//! PostgreSQL carries them with LISTEN/NOTIFY to every node (the sender's
//! included); SQLite, with one node, carries them in process, to every
//! handle on the same file. Messages may be lost (a dropped connection);
//! components also run on an interval, and after a reconnect every channel
//! gets an empty message, so listeners look for what they missed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

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
    /// A build (id in the payload) has new events in the database
    /// (`engine::event_notice` says how the payload reads).
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

    /// The notifications of the SQLite database at `path`, shared by every
    /// handle on it in this process (tests start a second node in the same
    /// process; nothing outside it can reach the file's notifications).
    pub fn for_sqlite(path: &Path) -> Arc<Notifications> {
        static BY_FILE: LazyLock<Mutex<HashMap<PathBuf, Weak<Notifications>>>> = LazyLock::new(Default::default);
        let file = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut by_file = BY_FILE.lock().unwrap_or_else(|p| p.into_inner());
        by_file.retain(|_, notifications| notifications.strong_count() > 0);
        if let Some(shared) = by_file.get(&file).and_then(Weak::upgrade) {
            return shared;
        }
        let notifications = Notifications::new();
        by_file.insert(file, Arc::downgrade(&notifications));
        notifications
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

    /// Tells every subscriber that messages may have been lost: an empty
    /// message on every channel.
    fn deliver_loss(&self) {
        for channel in Channel::ALL {
            self.deliver(channel, "");
        }
    }

    /// Forwards PostgreSQL notifications to local subscribers for as long as
    /// the pool is open, reconnecting when the connection drops.
    pub fn listen_to_postgres(self: &Arc<Self>, pool: PgPool) {
        let notifications = self.clone();
        tokio::spawn(async move {
            // After the first attempt, notifications may have gone unheard.
            let mut reconnecting = false;
            loop {
                match PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        let names: Vec<&str> = Channel::ALL.iter().map(|c| c.name()).collect();
                        if let Err(err) = listener.listen_all(names).await {
                            tracing::warn!(error = %err, "cannot LISTEN for notifications; retrying");
                        } else {
                            if reconnecting {
                                notifications.deliver_loss();
                            }
                            loop {
                                match listener.try_recv().await {
                                    Ok(Some(message)) => {
                                        if let Some(channel) = Channel::from_name(message.channel()) {
                                            notifications.deliver(channel, message.payload());
                                        }
                                    }
                                    // The connection dropped and the listener has
                                    // made a new one (LISTEN included): whatever
                                    // was sent in between went unheard.
                                    Ok(None) => {
                                        tracing::warn!("lost the notification connection; reconnected");
                                        notifications.deliver_loss();
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
                reconnecting = true;
                if pool.is_closed() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }
}
