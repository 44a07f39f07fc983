//! NUL characters (U+0000) in untrusted text. JSON and YAML can carry them
//! (`\u0000`, `"\0"`), but PostgreSQL cannot store them in a text column
//! at all, SQLite stores them where C clients read a cut-off string, and a
//! process cannot receive them in an argument or environment variable. So
//! atc refuses them where text enters: request URLs and JSON bodies
//! (`api`), pipeline configurations (`config`) and resource script
//! responses (`resource`), naming where the character was.

use serde_json::Value;

/// What every refusal says about the character.
pub const DESCRIPTION: &str = "a NUL character (\\u0000), which atc does not accept";

pub fn contains_nul(text: &str) -> bool {
    text.contains('\0')
}

/// Where in `value` the first string or object key holding a NUL is, as a
/// path like `jobs[0].plan[1].params.msg` (empty for a top-level string).
pub fn find_nul(value: &Value) -> Option<String> {
    let mut path = String::new();
    find_in(value, &mut path).then_some(path)
}

fn find_in(value: &Value, path: &mut String) -> bool {
    match value {
        Value::String(text) => contains_nul(text),
        Value::Array(items) => items.iter().enumerate().any(|(index, item)| {
            let length = path.len();
            path.push_str(&format!("[{index}]"));
            let found = find_in(item, path);
            if !found {
                path.truncate(length);
            }
            found
        }),
        Value::Object(fields) => fields.iter().any(|(key, item)| {
            let length = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            // The key itself is shown escaped, so the message stays printable.
            path.push_str(&printable(key));
            let found = contains_nul(key) || find_in(item, path);
            if !found {
                path.truncate(length);
            }
            found
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// `text` with every NUL written as `\0`: safe to store and show.
pub fn printable(text: &str) -> String {
    text.replace('\0', "\\0")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_the_path_of_the_first_nul_in_values_and_keys() {
        assert_eq!(find_nul(&json!({"a": [1, "x", {"b": "y\u{0}"}]})).as_deref(), Some("a[2].b"));
        assert_eq!(find_nul(&json!({"ok": "fine", "k\u{0}": 1})).as_deref(), Some("k\\0"));
        assert_eq!(find_nul(&json!("top\u{0}")).as_deref(), Some(""));
        assert_eq!(find_nul(&json!({"a": ["b", {"c": "\\u0000 is only text here"}]})), None);
    }
}
