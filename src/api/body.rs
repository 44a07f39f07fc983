//! Request bodies, read with a size limit and parsed with errors that name
//! what is wrong (as `{"errors": [...]}`, never axum's plain-text rejections).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use crate::nul;

/// Largest pipeline configuration (or `fly execute` plan, which carries a
/// task configuration) accepted.
pub const MAX_CONFIG_BYTES: usize = 10 * 1024 * 1024;

/// Largest body of every other endpoint: comments, the wall, team auth,
/// check requests, logins. They hold a few short fields, and a body is held
/// in memory whole while it is parsed, so a large one only costs memory.
pub const MAX_SMALL_BODY_BYTES: usize = 256 * 1024;

/// The raw body, at most `LIMIT` bytes.
pub struct RawBody<const LIMIT: usize = MAX_SMALL_BODY_BYTES>(pub Bytes);

impl<S: Send + Sync, const LIMIT: usize> FromRequest<S> for RawBody<LIMIT> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        read(request.into_body(), LIMIT).await.map(RawBody)
    }
}

/// How much of an oversized body is still read (and dropped) before the
/// answer: a connection closed with unread data is reset, and a client
/// still sending would lose the 413 that says why. Bigger bodies are cut off.
const DRAINED_BEYOND_LIMIT: usize = 16 * 1024 * 1024;
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn read(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut collected = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| ApiError::bad_request(format!("could not read request body: {err}")))?;
        if collected.len() + chunk.len() > limit {
            drain_refused(stream).await;
            return Err(ApiError::PayloadTooLarge(format!("request body is larger than {limit} bytes")));
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(collected.freeze())
}

/// Reads and drops what is left of a refused body, up to a bound, so the
/// client gets to read the answer.
pub async fn drain_refused(mut stream: axum::body::BodyDataStream) {
    use futures_util::StreamExt;
    let drain = async {
        let mut drained = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            drained += chunk.len();
            if drained > DRAINED_BEYOND_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
}

/// A JSON body of type `T`, at most `LIMIT` bytes; errors name the field
/// and position.
pub struct JsonBody<T, const LIMIT: usize = MAX_SMALL_BODY_BYTES>(pub T);

impl<S: Send + Sync, T: DeserializeOwned, const LIMIT: usize> FromRequest<S> for JsonBody<T, LIMIT> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody::<LIMIT>(bytes) = RawBody::from_request(request, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a JSON body, refusing NUL characters in any string or key: every
/// JSON body's text may end up in the database.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = |err: serde_json::Error| ApiError::bad_request(crate::nesting::json_error("JSON body", &err));
    let parsed = serde_json::from_slice(bytes).map_err(malformed)?;
    // JSON can only spell a NUL as an escape, so bodies without one are
    // spared a second parse.
    if has_nul_escape(bytes) {
        let value: Value = serde_json::from_slice(bytes).map_err(malformed)?;
        if let Some(path) = nul::find_nul(&value) {
            let place = if path.is_empty() { "the body".to_string() } else { format!("'{path}'") };
            return Err(ApiError::bad_request(format!("{place} contains {}", nul::DESCRIPTION)));
        }
    }
    Ok(parsed)
}

/// Whether `bytes` holds the escape `\u0000` (possibly as `\\u0000`, text
/// that only looks like it: the parse that follows tells them apart).
fn has_nul_escape(bytes: &[u8]) -> bool {
    bytes.windows(6).any(|window| window == b"\\u0000")
}
