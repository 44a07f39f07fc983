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

pub async fn read(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let too_large =
            std::error::Error::source(&err).is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::PayloadTooLarge(format!("request body is larger than {limit} bytes"))
        } else {
            ApiError::bad_request(format!("could not read request body: {err}"))
        }
    })
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
    let parsed =
        serde_json::from_slice(bytes).map_err(|err| ApiError::bad_request(format!("malformed JSON body: {err}")))?;
    // JSON can only spell a NUL as an escape, so bodies without one are
    // spared a second parse.
    if has_nul_escape(bytes) {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|err| ApiError::bad_request(format!("malformed JSON body: {err}")))?;
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
