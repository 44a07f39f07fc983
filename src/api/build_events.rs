//! `GET /api/v1/builds/:id/events`: the build's events as server-sent
//! events, from the start or after `Last-Event-ID`, live until the build
//! ends, then `event: end`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use tokio::sync::broadcast::{Receiver, error::RecvError};

use super::AppState;
use super::access::BuildScope;
use super::error::{ApiError, ApiResult};
use crate::db::{Db, StoredEvent};
use crate::engine::event_hub::{EventHub, HubMessage};

/// Events read from the database per query when catching up.
const PAGE: i64 = 500;
/// How long a watcher trusts announcements alone before looking at the
/// database anyway: an announcement is lost when its node dies between
/// storing events and announcing them.
const SAFETY_NET: std::time::Duration = std::time::Duration::from_secs(30);

pub async fn stream_events(
    State(state): State<AppState>,
    Extension(BuildScope(build)): Extension<BuildScope>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let next = first_event(&headers)?;
    // Subscribe before the first read so no event falls in between.
    let watcher = Watcher {
        hub: state.engine.hub.clone(),
        db: state.db.clone(),
        build_id: build.id,
        next,
        updates: state.engine.hub.subscribe(build.id),
        pending: Vec::new().into_iter(),
        behind: true,
        completed: false,
        ending: false,
        ended: false,
    };
    let body = Body::from_stream(stream::unfold(watcher, |mut watcher| async move {
        let frame = watcher.next_frame().await?;
        Some((Ok::<_, std::io::Error>(frame), watcher))
    }));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    headers.insert("X-Accel-Buffering", HeaderValue::from_static("no"));
    headers.insert("X-ATC-Stream-Version", HeaderValue::from_static("2.0"));
    Ok(response)
}

/// The number of the first event to send: from the start, or the event
/// after `Last-Event-ID` (the largest number has none after it).
pub(crate) fn first_event(headers: &HeaderMap) -> ApiResult<i64> {
    let Some(value) = headers.get("last-event-id") else { return Ok(0) };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|last| *last >= 0)
        .and_then(|last| last.checked_add(1))
        .ok_or_else(|| {
            ApiError::bad_request(format!("Last-Event-ID must be an event number from 0 to {}", i64::MAX - 1))
        })
}

struct Watcher {
    hub: Arc<EventHub>,
    db: Db,
    build_id: i64,
    /// Number of the next event to send.
    next: i64,
    updates: Receiver<HubMessage>,
    pending: std::vec::IntoIter<StoredEvent>,
    /// Whether the database may hold events (or the end) not yet read.
    behind: bool,
    /// Whether the build was seen completed: every event it has is stored.
    completed: bool,
    /// Whether `end` follows the pending events.
    ending: bool,
    ended: bool,
}

impl Watcher {
    /// The next SSE frame, or `None` once `end` was sent (or the database failed).
    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(event) = self.pending.next() {
                if event.event_id < self.next {
                    continue;
                }
                self.next = event.event_id + 1;
                return Some(frame(&event));
            }
            if self.ending {
                self.ended = true;
                self.hub.release_finished(self.build_id);
                return Some(Bytes::from(format!("id: {}\nevent: end\ndata: \n\n", self.next)));
            }
            if self.behind {
                self.read_database().await?;
                continue;
            }
            self.wait_for_news().await;
        }
    }

    /// Reads the next page of stored events; the last page also says
    /// whether the build has ended.
    async fn read_database(&mut self) -> Option<()> {
        // Completion first: a build's final status is stored with its last
        // events, so once it is seen completed, the read below gets them all.
        if !self.completed {
            match self.db.find_build(self.build_id).await {
                Ok(Some(build)) => self.completed = build.completed,
                Ok(None) => return None,
                Err(err) => {
                    tracing::warn!(build_id = self.build_id, error = %err, "cannot read the build");
                    return None;
                }
            }
        }
        let events = match self.db.build_events(self.build_id, self.next, PAGE).await {
            Ok(events) => events,
            Err(err) => {
                tracing::warn!(build_id = self.build_id, error = %err, "cannot read build events");
                return None;
            }
        };
        if (events.len() as i64) < PAGE {
            self.behind = false;
            self.ending = self.completed;
        }
        self.pending = events.into_iter();
        Some(())
    }

    /// Waits for this node's hub: events stored here come with it; events
    /// stored elsewhere, the end, or lost news mean reading the database.
    async fn wait_for_news(&mut self) {
        let update = match tokio::time::timeout(SAFETY_NET, self.updates.recv()).await {
            Ok(update) => update,
            Err(_) => {
                self.behind = true;
                return;
            }
        };
        match update {
            Ok(HubMessage::Events(events)) => match events.first() {
                // Numbered on from where we are (any before it are skipped).
                Some(first) if first.event_id <= self.next => self.pending = Arc::unwrap_or_clone(events).into_iter(),
                // Events before these went unseen.
                Some(_) => self.behind = true,
                None => {}
            },
            Ok(HubMessage::Stored { before }) => self.behind |= before > self.next,
            Ok(HubMessage::ReadAgain | HubMessage::Finished) | Err(RecvError::Lagged(_)) => self.behind = true,
            Err(RecvError::Closed) => {
                // The hub dropped the channel (the build finished): read the rest.
                self.updates = self.hub.subscribe(self.build_id);
                self.behind = true;
            }
        }
    }
}

fn frame(event: &StoredEvent) -> Bytes {
    let envelope = format!(
        r#"{{"data":{},"event":{},"version":{},"event_id":"{}"}}"#,
        event.payload,
        serde_json::Value::from(event.kind.as_str()),
        serde_json::Value::from(event.version.as_str()),
        event.event_id
    );
    Bytes::from(format!("id: {}\nevent: event\ndata: {envelope}\n\n", event.event_id))
}
