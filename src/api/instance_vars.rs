//! Pipeline instance vars as clients pass them in the query string:
//! `vars={"branch":"main"}` and/or patches like `vars.branch="main"`.

use serde_json::{Map, Value};

use super::error::ApiError;
use crate::nesting::{self, MAX_DOCUMENT_DEPTH};

/// Canonical JSON of the instance vars in `query` (keys sorted), or an empty
/// string when there are none. They may nest at most
/// [`MAX_DOCUMENT_DEPTH`] levels, as deep as a configuration may set them.
pub fn from_query(query: Option<&str>) -> Result<String, ApiError> {
    let mut pairs: Vec<(String, String)> = form_pairs(query.unwrap_or(""))
        .into_iter()
        .filter(|(key, _)| key == "vars" || key.starts_with("vars."))
        .collect();
    if pairs.is_empty() {
        return Ok(String::new());
    }
    // Whole-object `vars` first, then patches in a stable order.
    pairs.sort();
    let mut root = Value::Object(Map::new());
    for (key, raw) in pairs {
        let malformed = |message: String| {
            // The key may be huge: name only its start.
            let shown: String = key.chars().take(40).collect();
            let ellipsis = if shown.len() < key.len() { "..." } else { "" };
            ApiError::bad_request(format!("instance vars are malformed: {shown}{ellipsis}: {message}"))
        };
        let path: Vec<&str> = key.split('.').skip(1).collect();
        let value: Value = serde_json::from_str(&raw).map_err(|e| malformed(nesting::json_error("its value", &e)))?;
        if path.len() + nesting::depth(&value) > MAX_DOCUMENT_DEPTH {
            return Err(malformed(format!("instance vars may nest at most {MAX_DOCUMENT_DEPTH} levels deep")));
        }
        set_path(&mut root, &path, value).map_err(|e| malformed(e.to_string()))?;
    }
    match &root {
        Value::Object(map) if map.is_empty() => Ok(String::new()),
        Value::Object(_) => Ok(root.to_string()),
        _ => Err(ApiError::bad_request("instance vars must be an object")),
    }
}

/// Why a dotted instance var cannot be set where its key says.
#[derive(Debug, thiserror::Error)]
enum UnsettablePath {
    #[error("empty field name")]
    EmptyField,
    #[error("'{0}' is set inside a value that is not an object")]
    InsideNonObject(String),
}

/// Sets `value` at `path` (field names) inside `target`, making objects on
/// the way. A loop, not a recursion: the path's length comes from the URL.
fn set_path(target: &mut Value, path: &[&str], value: Value) -> Result<(), UnsettablePath> {
    let mut current = target;
    for field in path {
        if field.is_empty() {
            return Err(UnsettablePath::EmptyField);
        }
        let Value::Object(map) = current else {
            return Err(UnsettablePath::InsideNonObject(field.to_string()));
        };
        current = map.entry(field.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
    *current = value;
    Ok(())
}

/// Decodes a query string; undecodable input yields no pairs.
pub fn form_pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(query).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_object_and_patches_merge_canonically() {
        let query = "vars=%7B%22b%22%3A1%2C%22a%22%3A%22x%22%7D&vars.c.d=true";
        assert_eq!(from_query(Some(query)).unwrap(), r#"{"a":"x","b":1,"c":{"d":true}}"#);
    }

    #[test]
    fn no_vars_is_empty() {
        assert_eq!(from_query(Some("limit=3")).unwrap(), "");
        assert_eq!(from_query(None).unwrap(), "");
    }

    #[test]
    fn nesting_past_the_document_depth_is_a_bad_request() {
        let deepest = format!("vars{}=1", ".a".repeat(MAX_DOCUMENT_DEPTH));
        assert!(from_query(Some(&deepest)).is_ok());
        let deeper = format!("vars{}=1", ".a".repeat(MAX_DOCUMENT_DEPTH + 1));
        let Err(ApiError::BadRequest(errors)) = from_query(Some(&deeper)) else { panic!("accepted") };
        assert!(errors[0].ends_with("instance vars may nest at most 64 levels deep"), "{errors:?}");
        // Path and value together.
        let deeper = format!("vars{}=%5B%5B1%5D%5D", ".a".repeat(MAX_DOCUMENT_DEPTH - 1));
        assert!(from_query(Some(&deeper)).is_err());
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(from_query(Some("vars=%7Bnope")), Err(ApiError::BadRequest(_))));
    }
}
