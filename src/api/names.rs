//! Names of teams, pipelines and the objects in them, checked the way
//! Concourse checks identifiers: empty is an error, odd characters a warning.

use serde::Serialize;

use super::error::ApiError;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NameWarning {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
}

/// Rejects names no URL can carry; returns a warning for names that are
/// allowed but not valid identifiers (lowercase letters, digits, `-_.`).
pub fn validate_name(kind: &str, name: &str) -> Result<Vec<NameWarning>, ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::bad_request(format!("{kind} name must not be empty")));
    }
    if name.chars().any(|c| c == '/' || c.is_control()) {
        return Err(ApiError::bad_request(format!("{kind} name '{name}' must not contain '/' or control characters")));
    }
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_lowercase() || c.is_ascii_digit() || (c.is_alphabetic() && !c.is_uppercase()));
    let rest_ok = name
        .chars()
        .all(|c| (c.is_alphabetic() && !c.is_uppercase()) || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    let reason = if name.chars().all(|c| c.is_ascii_digit()) {
        Some("cannot be just numbers".to_string())
    } else if !first_ok {
        Some("must start with a lowercase letter or a number".to_string())
    } else if !rest_ok {
        name.chars()
            .find(|c| !((c.is_alphabetic() && !c.is_uppercase()) || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')))
            .map(|c| format!("illegal character '{c}'"))
    } else {
        None
    };
    Ok(reason
        .map(|reason| NameWarning {
            kind: "invalid_identifier",
            message: format!("{kind}: '{name}' is not a valid identifier: {reason}"),
        })
        .into_iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_identifiers_have_no_warning() {
        assert!(validate_name("pipeline", "my-pipeline_1.0").unwrap().is_empty());
    }

    #[test]
    fn odd_names_warn() {
        let warnings = validate_name("pipeline", "My Pipeline").unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].message.contains("must start with a lowercase letter"));
        assert!(validate_name("team", "a b").unwrap()[0].message.contains("illegal character ' '"));
        assert!(validate_name("team", "123").unwrap()[0].message.contains("just numbers"));
    }

    #[test]
    fn unusable_names_are_errors() {
        assert!(validate_name("team", "").is_err());
        assert!(validate_name("team", "a/b").is_err());
    }
}
