//! Request bodies, read with a size limit and parsed with errors that name
//! what is wrong (as `{"errors": [...]}`, never axum's plain-text rejections).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Largest request body accepted by default (pipeline configs, JSON bodies).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The raw body, at most [`MAX_BODY_BYTES`].
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        read(request.into_body(), MAX_BODY_BYTES).await.map(RawBody)
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

/// A JSON body of type `T`; errors name the field and position.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(request, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|err| ApiError::bad_request(crate::nesting::json_error("JSON body", &err)))
}
