//! How long free text stored through the API may be. Concourse sets no
//! limit of its own, but shows these texts as a line or a short paragraph;
//! without one, a few requests of megabytes each are kept forever and sent
//! back with every listing of the object.

use super::error::{ApiError, ApiResult};

/// Pin comments (`fly pin-resource --comment`) and build comments: a
/// sentence or two on why.
pub const MAX_COMMENT_BYTES: usize = 4 * 1024;

/// The wall message (`fly set-wall`): a banner on every page of the UI.
pub const MAX_WALL_MESSAGE_BYTES: usize = 4 * 1024;

/// Refuses `text` when it is longer than `max` bytes, naming `field`.
pub fn check_length(field: &str, text: &str, max: usize) -> ApiResult<()> {
    if text.len() > max {
        return Err(ApiError::bad_request(format!(
            "{field} is {} bytes long; at most {max} bytes are allowed",
            text.len()
        )));
    }
    Ok(())
}
