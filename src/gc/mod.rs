//! The collector component: removes what nothing needs any more. Each
//! collector is one concern; the component runs them in turn.

use crate::component::{Component, ComponentFuture};
use crate::db::{Channel, Db};

pub struct Collector {
    db: Db,
}

impl Collector {
    pub fn new(db: Db) -> Collector {
        Collector { db }
    }

    /// Access tokens past their expiry can never be used again.
    async fn collect_expired_tokens(&self) -> anyhow::Result<()> {
        let removed = self.db.delete_expired_access_tokens().await?;
        if removed > 0 {
            tracing::debug!(removed, "removed expired access tokens");
        }
        Ok(())
    }
}

impl Component for Collector {
    fn name(&self) -> &'static str {
        "collector"
    }

    fn wake_channel(&self) -> Option<Channel> {
        None
    }

    fn tick(&self) -> ComponentFuture<'_> {
        Box::pin(async move { self.collect_expired_tokens().await })
    }
}
