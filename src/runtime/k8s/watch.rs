//! One watch of the runtime's pods (by label selector) shared by every
//! step: a reflector keeps their latest state, resumed from its
//! resourceVersion after a disconnect, and each change wakes whoever waits
//! on a pod.

use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

pub struct PodWatch {
    store: Store<Pod>,
    namespace: String,
    changes: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl PodWatch {
    pub fn start(pods: Api<Pod>, namespace: &str, selector: &str) -> PodWatch {
        let (store, writer) = reflector::store();
        let (changed, changes) = watch::channel(0u64);
        let stream =
            reflector::reflector(writer, watcher(pods, watcher::Config::default().labels(selector))).default_backoff();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Err(err) = event {
                    tracing::warn!(error = %err, "the watch of step pods failed; resuming");
                }
                changed.send_modify(|n| *n += 1);
            }
        });
        PodWatch { store, namespace: namespace.to_string(), changes, task }
    }

    /// Waits until the first list is in.
    pub async fn ready(&self) {
        let _ = self.store.wait_until_ready().await;
    }

    pub fn get(&self, name: &str) -> Option<Arc<Pod>> {
        self.store.get(&ObjectRef::new(name).within(&self.namespace))
    }

    pub fn all(&self) -> Vec<Arc<Pod>> {
        self.store.state()
    }

    /// Waits until `decide` answers for the pod `name` as last seen (`None`
    /// once it is gone).
    pub async fn wait_for<T>(&self, name: &str, mut decide: impl FnMut(Option<&Pod>) -> Option<T>) -> T {
        let mut changes = self.changes.clone();
        loop {
            changes.borrow_and_update();
            if let Some(answer) = decide(self.get(name).as_deref()) {
                return answer;
            }
            if changes.changed().await.is_err() {
                // The watch task ended (the runtime is going away): nothing changes any more.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
