//! Names of teams and pipelines given in a path or body: empty or
//! unaddressable names are errors, odd ones a warning (as for every
//! identifier in a configuration).

use super::error::ApiError;
use crate::config::{Warning, validate_identifier};

/// Rejects names no URL can carry; returns a warning for names that are
/// allowed but not valid identifiers.
pub fn validate_name(kind: &str, name: &str) -> Result<Vec<Warning>, ApiError> {
    if name.chars().any(|c| c == '/' || c.is_control()) {
        return Err(ApiError::bad_request(format!("{kind} name '{name}' must not contain '/' or control characters")));
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
    }
}
