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
/// How long a watcher waits for the hub before looking at the database again.
const SAFETY_NET: std::time::Duration = std::time::Duration::from_secs(2);

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
            match self.db.build_events(self.build_id, self.next, PAGE).await {
                Ok(events) if !events.is_empty() => {
                    self.pending = events.into_iter();
                    continue;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(build_id = self.build_id, error = %err, "cannot read build events");
                    return None;
                }
            }
            // Caught up with the database: done if the build is.
            match self.db.find_build(self.build_id).await {
                Ok(Some(build)) if build.completed => {
                    // Events written just before completion may still be new.
                    if let Ok(events) = self.db.build_events(self.build_id, self.next, PAGE).await
                        && !events.is_empty()
                    {
                        self.pending = events.into_iter();
                        continue;
                    }
                    self.ended = true;
                    self.hub.release_finished(self.build_id);
                    return Some(Bytes::from(format!("id: {}\nevent: end\ndata: \n\n", self.next)));
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
            // The hub wakes us; the timeout covers builds ended by a component
            // that has no hub (or another node), found on the next look.
            let update = match tokio::time::timeout(SAFETY_NET, self.updates.recv()).await {
                Ok(update) => update,
                Err(_) => continue,
            };
            match update {
                Ok(HubMessage::Events(events)) => {
                    // Use the hub's copy when it continues exactly where we are.
                    if events.first().is_some_and(|e| e.event_id == self.next) {
                        self.pending = Arc::unwrap_or_clone(events).into_iter();
                    }
                }
                Ok(HubMessage::Stored | HubMessage::Finished) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => {
                    // The hub dropped the channel (build finished): read the rest.
                    self.updates = tokio::sync::broadcast::channel(1).1;
                }
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
