//! Pipeline instance vars as clients pass them in the query string:
//! `vars={"branch":"main"}` and/or patches like `vars.branch="main"`.

use serde_json::{Map, Value};

use super::error::ApiError;

/// Canonical JSON of the instance vars in `query` (keys sorted), or an empty
/// string when there are none.
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
        let value: Value = serde_json::from_str(&raw)
            .map_err(|e| ApiError::bad_request(format!("instance vars are malformed: {key}: {e}")))?;
        let path: Vec<&str> = key.split('.').skip(1).collect();
        set_path(&mut root, &path, value)
            .map_err(|message| ApiError::bad_request(format!("instance vars are malformed: {key}: {message}")))?;
    }
    match &root {
        Value::Object(map) if map.is_empty() => Ok(String::new()),
        Value::Object(_) => Ok(root.to_string()),
        _ => Err(ApiError::bad_request("instance vars must be an object")),
    }
}

fn set_path(target: &mut Value, path: &[&str], value: Value) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        *target = value;
        return Ok(());
    };
    if first.is_empty() {
        return Err("empty field name".into());
    }
    let Value::Object(map) = target else {
        return Err(format!("'{first}' is set inside a value that is not an object"));
    };
    let child = map.entry(first.to_string()).or_insert_with(|| Value::Object(Map::new()));
    set_path(child, rest, value)
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
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(from_query(Some("vars=%7Bnope")), Err(ApiError::BadRequest(_))));
    }
}
