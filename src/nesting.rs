//! How deeply untrusted documents may nest, and measuring them.
//!
//! Everything that walks a document (parsing, validation, interpolation,
//! compiling and running a plan) recurses once per level, on a tokio worker
//! thread whose stack is small. A client must never be able to choose how
//! deep that goes, so every way a document gets in is bounded here.

use serde_json::Value;

/// The deepest JSON that parses: `serde_json` refuses one more level of
/// arrays or objects before recursing into it. Every JSON body, stored
/// plan, resource response and `load_var` file is held to it.
pub const MAX_JSON_DEPTH: usize = 127;

/// The deepest a configuration (pipeline, task config, var file) and a
/// pipeline's instance vars may nest, YAML or JSON alike: the YAML
/// parser's default. Real pipelines nest a dozen levels at most.
pub const MAX_DOCUMENT_DEPTH: usize = 64;

/// How many levels of arrays and objects `value` has (a scalar has none).
/// Iterative, so measuring is safe whatever the depth.
pub fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(value, 0)];
    while let Some((value, level)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(level + 1);
        pending.extend(children.map(|child| (child, level + 1)));
    }
    deepest
}

/// About how much text `value` is as JSON (its strings, keys and a few
/// bytes for everything else). Iterative, so measuring is safe whatever
/// the depth.
pub fn text_size(value: &Value) -> usize {
    let mut bytes = 0;
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        bytes += match value {
            Value::String(text) => text.len() + 2,
            Value::Array(items) => {
                pending.extend(items);
                2
            }
            Value::Object(map) => {
                pending.extend(map.values());
                map.keys().map(|key| key.len() + 4).sum::<usize>() + 2
            }
            _ => 8,
        };
    }
    bytes
}

/// Whether parsing failed for nesting past [`MAX_JSON_DEPTH`]
/// (`serde_json` has no error category of its own for it).
pub fn is_too_deep(err: &serde_json::Error) -> bool {
    err.to_string().starts_with("recursion limit exceeded")
}

/// A JSON parse error in the user's terms: `what` (e.g. "JSON body") is
/// named, and nesting past [`MAX_JSON_DEPTH`] says so instead of the
/// parser's "recursion limit exceeded".
pub fn json_error(what: &str, err: &serde_json::Error) -> String {
    if is_too_deep(err) {
        format!(
            "{what} is nested more than {MAX_JSON_DEPTH} levels deep (line {}, column {})",
            err.line(),
            err.column()
        )
    } else {
        format!("malformed {what}: {err}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn depth_counts_levels_of_arrays_and_objects() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!([])), 1);
        assert_eq!(depth(&json!({ "a": [1, { "b": {} }], "c": 2 })), 4);
        let deep: Value = serde_json::from_str(&nested(MAX_JSON_DEPTH)).unwrap();
        assert_eq!(depth(&deep), MAX_JSON_DEPTH);
    }

    #[test]
    fn json_one_level_past_the_limit_is_refused_in_plain_words() {
        let err = serde_json::from_str::<Value>(&nested(MAX_JSON_DEPTH + 1)).unwrap_err();
        assert_eq!(json_error("JSON body", &err), "JSON body is nested more than 127 levels deep (line 1, column 128)");
        let err = serde_json::from_str::<Value>("{").unwrap_err();
        assert!(json_error("JSON body", &err).starts_with("malformed JSON body: EOF"), "{err}");
    }
}
