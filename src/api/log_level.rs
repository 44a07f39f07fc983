//! `GET|PUT /api/v1/log-level`: atc's log level as plain text (`debug`,
//! `info`, `warn`, `error`, `fatal`), changed without a restart.

use axum::http::StatusCode;

use super::body::RawBody;
use super::error::{ApiError, ApiResult};
use crate::logging::{self, LogLevel};

pub async fn get_log_level() -> &'static str {
    logging::control().level().name()
}

pub async fn set_log_level(RawBody(body): RawBody) -> ApiResult<StatusCode> {
    let requested = String::from_utf8_lossy(&body);
    let level = LogLevel::parse(requested.trim()).ok_or_else(|| {
        ApiError::bad_request(format!("'{}' is not a log level: debug, info, warn, error or fatal", requested.trim()))
    })?;
    logging::control().set_level(level).map_err(|e| ApiError::Internal(e.to_string()))?;
    tracing::info!(level = level.name(), "log level changed");
    Ok(StatusCode::OK)
}
