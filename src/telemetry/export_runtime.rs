//! Exports run on a thread and async runtime of their own, so a slow or
//! unreachable collector never takes a worker thread from the API.

use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

pub struct ExportRuntime {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ExportRuntime {
    pub fn start() -> std::io::Result<ExportRuntime> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("atc-telemetry-export".into()).spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
            // Exports still running had their chance during the flush.
            runtime.shutdown_timeout(Duration::from_millis(200));
        })?;
        Ok(ExportRuntime { handle, stop: Some(stop), thread: Some(thread) })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Stops the runtime and waits for its thread (a fraction of a second).
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
