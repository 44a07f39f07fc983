//! Names of teams and pipelines given in a path or body: names no URL can
//! address (or that pose as other names) are errors, odd ones a warning (as
//! for every identifier in a configuration).

use super::error::ApiError;
use crate::config::{Warning, unusable_name, validate_identifier};

/// Rejects names that cannot be used (see [`unusable_name`]); returns a
/// warning for names that are allowed but not valid identifiers.
pub fn validate_name(kind: &str, name: &str) -> Result<Vec<Warning>, ApiError> {
    if let Some(problem) = unusable_name(name) {
        // The name itself is left out: it may be huge or display as something else.
        return Err(ApiError::bad_request(format!("{kind} name {problem}")));
    }
    validate_identifier(name, kind)
        .map(|warning| warning.into_iter().collect())
        .map_err(|_| ApiError::bad_request(format!("{kind} name must not be empty")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_names_warn_and_unusable_ones_fail() {
        assert!(validate_name("pipeline", "my-pipeline_1.0").unwrap().is_empty());
        assert!(validate_name("pipeline", "My Pipeline").unwrap()[0].message.contains("must start with a lowercase"));
        assert!(validate_name("team", "").is_err());
        assert!(validate_name("team", "a/b").is_err());
        assert!(validate_name("team", "..").is_err());
    }
}
