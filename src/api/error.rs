//! The API's one error type: each variant knows its HTTP status, and every
//! error answers `{"errors": [...]}` so clients always get a reason.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::db::DbError;

#[derive(Debug)]
pub enum ApiError {
    BadRequest(Vec<String>),
    Unauthorized,
    Forbidden,
    NotFound(String),
    MethodNotAllowed(String),
    Conflict(String),
    PayloadTooLarge(String),
    UnsupportedMediaType(String),
    /// A dependency (the database) cannot be reached; the message says which and why.
    Unavailable(String),
    /// A Concourse route for something atc does not have (TSA workers,
    /// container hijacking); the message says what and why.
    NotImplemented(String),
    /// A stored row does not parse; the message names it (never its
    /// content), so an operator can find and repair it.
    CorruptData(String),
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest(vec![message.into()])
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::NotFound(format!("{} not found", what.into()))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::CorruptData(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn messages(&self) -> Vec<String> {
        match self {
            ApiError::BadRequest(messages) => messages.clone(),
            ApiError::Unauthorized => vec!["not authorized".into()],
            ApiError::Forbidden => vec!["forbidden".into()],
            ApiError::NotFound(m)
            | ApiError::MethodNotAllowed(m)
            | ApiError::Conflict(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::Unavailable(m)
            | ApiError::NotImplemented(m)
            | ApiError::CorruptData(m) => vec![m.clone()],
            // The cause is logged; the caller learns only that it was ours.
            ApiError::Internal(_) => vec!["internal server error".into()],
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(cause) | ApiError::CorruptData(cause) => {
                tracing::error!(error = %cause, "request failed")
            }
            ApiError::Unavailable(cause) => tracing::warn!(error = %cause, "request failed"),
            _ => {}
        }
        let too_large = matches!(self, ApiError::PayloadTooLarge(_));
        let body = match &self {
            // go-concourse reads a 404's body as JSON:API errors and prints
            // their details; a plain string would print as nothing.
            ApiError::NotFound(_) => {
                let errors: Vec<Value> = self
                    .messages()
                    .into_iter()
                    .map(|detail| json!({ "title": "Resource Not Found Error", "detail": detail, "status": "404" }))
                    .collect();
                json!({ "errors": errors })
            }
            _ => json!({ "errors": self.messages() }),
        };
        let mut response = (self.status(), Json(body)).into_response();
        if too_large {
            // The rest of the body is never read: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> ApiError {
        match err {
            DbError::ConfigVersionConflict { .. } | DbError::AlreadyExists(_) => ApiError::Conflict(err.to_string()),
            DbError::Invalid(message) => ApiError::BadRequest(vec![message]),
            DbError::NotFound(_) => ApiError::NotFound(err.to_string()),
            DbError::Unavailable(_) => ApiError::Unavailable(err.to_string()),
            DbError::CorruptRow { .. } => ApiError::CorruptData(err.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
