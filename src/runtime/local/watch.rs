//! Wake-ups when files in a step's directory change (its output grows, its
//! exit code appears), from one inotify instance for the whole runtime.
//! Without inotify (or past its limits) readers fall back to polling, so a
//! watch is a latency optimisation, never a condition for correctness.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

/// What a directory's watchers wait on: a counter bumped on every change.
type Changes = watch::Sender<u64>;

struct Watched {
    changes: Changes,
    /// Live [`DirWatch`]es of this directory.
    users: usize,
}

struct Inner {
    fd: AsyncFd<OwnedFd>,
    by_descriptor: Mutex<HashMap<i32, Watched>>,
}

/// The runtime's inotify instance; cheap to clone.
#[derive(Clone)]
pub struct DirWatcher {
    inner: Option<Arc<Inner>>,
}

/// Changes to one directory, while this value lives.
pub struct DirWatch {
    changes: Option<watch::Receiver<u64>>,
    descriptor: i32,
    inner: Option<Arc<Inner>>,
}

impl DirWatcher {
    /// Starts the inotify reader on the current tokio runtime; without
    /// inotify, watches never fire and readers poll.
    pub fn start() -> DirWatcher {
        match Self::open() {
            Ok(inner) => {
                let inner = Arc::new(inner);
                tokio::spawn(read_events(Arc::downgrade(&inner)));
                DirWatcher { inner: Some(inner) }
            }
            Err(err) => {
                tracing::warn!(error = %err, "inotify is unavailable: step output is polled");
                DirWatcher { inner: None }
            }
        }
    }

    fn open() -> io::Result<Inner> {
        // SAFETY: inotify_init1 has no memory effects; the descriptor is owned below.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the descriptor is owned by the AsyncFd and never exchanged.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|err| err.into_parts().1)?;
        Ok(Inner { fd, by_descriptor: Mutex::new(HashMap::new()) })
    }

    /// Watches `dir` for files written, created or renamed into it.
    pub fn watch(&self, dir: &Path) -> DirWatch {
        let unwatched = DirWatch { changes: None, descriptor: -1, inner: None };
        let Some(inner) = &self.inner else { return unwatched };
        let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else { return unwatched };
        let mask = libc::IN_MODIFY | libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_CREATE;
        // SAFETY: the descriptor is open and `path` is NUL-terminated.
        let descriptor = unsafe { libc::inotify_add_watch(inner.fd.as_raw_fd(), path.as_ptr(), mask) };
        if descriptor < 0 {
            tracing::debug!(dir = %dir.display(), error = %io::Error::last_os_error(), "cannot watch a step");
            return unwatched;
        }
        let mut watched = lock(&inner.by_descriptor);
        // Watching a directory twice gives the same descriptor: share it.
        let entry = watched.entry(descriptor).or_insert_with(|| Watched { changes: watch::channel(0).0, users: 0 });
        entry.users += 1;
        DirWatch { changes: Some(entry.changes.subscribe()), descriptor, inner: Some(inner.clone()) }
    }
}

impl DirWatch {
    /// Waits for a change after the last one seen, or `timeout` (the poll
    /// that covers lost or impossible watches).
    pub async fn changed(&mut self, timeout: std::time::Duration) {
        match &mut self.changes {
            Some(changes) => {
                let _ = tokio::time::timeout(timeout, changes.changed()).await;
            }
            None => tokio::time::sleep(timeout.min(POLL_WITHOUT_WATCH)).await,
        }
    }
}

/// How often an unwatched directory is looked at.
const POLL_WITHOUT_WATCH: std::time::Duration = std::time::Duration::from_millis(20);

impl Drop for DirWatch {
    fn drop(&mut self) {
        let Some(inner) = &self.inner else { return };
        let mut watched = lock(&inner.by_descriptor);
        let Some(entry) = watched.get_mut(&self.descriptor) else { return };
        entry.users -= 1;
        if entry.users == 0 {
            watched.remove(&self.descriptor);
            // SAFETY: removing a watch has no memory effects; a stale descriptor gives EINVAL.
            unsafe { libc::inotify_rm_watch(inner.fd.as_raw_fd(), self.descriptor) };
        }
    }
}

fn lock(map: &Mutex<HashMap<i32, Watched>>) -> std::sync::MutexGuard<'_, HashMap<i32, Watched>> {
    map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads inotify events and bumps the counter of each directory they name,
/// until the runtime is dropped.
async fn read_events(inner: std::sync::Weak<Inner>) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let Ok(mut ready) = strong.fd.readable().await else { return };
        // SAFETY: the buffer is valid for its length.
        let read = unsafe { libc::read(strong.fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
        if read < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                ready.clear_ready();
                continue;
            }
            tracing::warn!(error = %err, "inotify read failed: step output is polled from now on");
            return;
        }
        let watched = lock(&strong.by_descriptor);
        let mut offset = 0usize;
        let header = std::mem::size_of::<libc::inotify_event>();
        while offset + header <= read as usize {
            // SAFETY: the kernel wrote a whole event header at `offset`; it may be unaligned.
            let event: libc::inotify_event =
                unsafe { std::ptr::read_unaligned(buffer.as_ptr().add(offset).cast::<libc::inotify_event>()) };
            if let Some(entry) = watched.get(&event.wd) {
                entry.changes.send_modify(|count| *count = count.wrapping_add(1));
            }
            offset += header + event.len as usize;
        }
    }
}
