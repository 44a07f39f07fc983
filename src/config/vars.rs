//! `((var))` references in configuration: finding them, and interpolating
//! values into JSON documents. A reference is `((name))`, `((name.field))`,
//! `((source:path.field))` or, for local vars (`load_var`, `across`),
//! `((.:name))`; segments may be quoted (`(("a.b".c))`).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

static REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\(\((([-/\.\w\pL]+:)?[-/\.:@"\w\pL]+)\)\)"#).expect("valid regex"));

/// A parsed `((reference))`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VarRef {
    /// The var source (`vault`, `.` for local vars), if one is named.
    pub source: Option<String>,
    pub path: String,
    pub fields: Vec<String>,
}

/// A `((reference))` that does not parse; `name` is what is inside the parentheses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidVarRef {
    #[error("invalid var '{name}': source must not be quoted")]
    QuotedSource { name: String },
    #[error("invalid var '{name}': empty field")]
    EmptyField { name: String },
}

impl VarRef {
    pub fn parse(name: &str) -> Result<VarRef, InvalidVarRef> {
        let (source, rest) = match find_unquoted(name, ':') {
            Some(i) => {
                let source = &name[..i];
                if source.contains('"') {
                    return Err(InvalidVarRef::QuotedSource { name: name.to_string() });
                }
                (Some(source.to_string()), &name[i + 1..])
            }
            None => (None, name),
        };
        let mut segments = Vec::new();
        let mut rest = rest;
        loop {
            let (segment, next) = match find_unquoted(rest, '.') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            let segment = segment.trim().replace('"', "");
            if segment.is_empty() {
                return Err(InvalidVarRef::EmptyField { name: name.to_string() });
            }
            segments.push(segment);
            match next {
                Some(next) => rest = next,
                None => break,
            }
        }
        let path = segments.remove(0);
        Ok(VarRef { source, path, fields: segments })
    }

    /// A var set by `load_var` or `across` in this build.
    pub fn is_local(&self) -> bool {
        self.source.as_deref() == Some(".")
    }
}

impl std::fmt::Display for VarRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quote = |segment: &str| {
            if segment.contains([',', '.', ':', '/', ' ']) { format!("\"{segment}\"") } else { segment.to_string() }
        };
        if let Some(source) = &self.source {
            write!(f, "{source}:")?;
        }
        write!(f, "{}", quote(&self.path))?;
        for field in &self.fields {
            write!(f, ".{}", quote(field))?;
        }
        Ok(())
    }
}

fn find_unquoted(text: &str, wanted: char) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == wanted && !quoted {
            return Some(i);
        }
    }
    None
}

/// The names inside every `((...))` of a string, in order.
pub fn names_in(text: &str) -> Vec<String> {
    REFERENCE.captures_iter(text).map(|c| c[1].to_string()).collect()
}

/// Every var name referenced anywhere in a document (keys included).
pub fn references(value: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    collect(value, &mut found);
    found
}

fn collect(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::String(text) => found.extend(names_in(text)),
        Value::Array(items) => items.iter().for_each(|item| collect(item, found)),
        Value::Object(map) => {
            for (key, item) in map {
                found.extend(names_in(key));
                collect(item, found);
            }
        }
        _ => {}
    }
}

/// What to do with a reference nothing defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undefined {
    /// Leave `((name))` in place (a later stage may define it).
    Keep,
    /// Fail, naming every undefined var.
    Fail,
}

/// The most text interpolation may add to a document, counting a var's
/// value each time it is used. Real configurations use a few short values;
/// without a bound, a long value used many times multiplies into gigabytes.
pub const MAX_INTERPOLATED_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InterpolationError {
    #[error("undefined vars: {}", .0.join(", "))]
    Undefined(Vec<String>),
    #[error("cannot interpolate ((\"{name}\")): its value is a {kind}, only strings and numbers fit inside text")]
    NotText { name: String, kind: &'static str },
    #[error("the values of its vars add more than {MAX_INTERPOLATED_BYTES} bytes to the document")]
    TooLarge,
    #[error(transparent)]
    InvalidReference(#[from] InvalidVarRef),
}

/// Looks a var up: `None` when it is not defined. It cannot fail: what may
/// (a credential manager) is asked before interpolating, and its answers
/// are what a lookup reads.
pub type Lookup<'a> = dyn Fn(&VarRef) -> Option<Value> + 'a;

/// Replaces every `((var))` in `value`. A string that is exactly one
/// reference takes the var's value with its type; inside longer text only
/// strings and numbers fit. Values are not interpolated again.
pub fn interpolate(value: &Value, lookup: &Lookup<'_>, undefined: Undefined) -> Result<Value, InterpolationError> {
    let mut interpolation = Interpolation { lookup, missing: BTreeSet::new(), added: 0 };
    let result = interpolation.walk(value)?;
    if undefined == Undefined::Fail && !interpolation.missing.is_empty() {
        return Err(InterpolationError::Undefined(interpolation.missing.into_iter().collect()));
    }
    Ok(result)
}

struct Interpolation<'a, 'b> {
    lookup: &'a Lookup<'b>,
    missing: BTreeSet<String>,
    /// Bytes the values put in so far (see [`MAX_INTERPOLATED_BYTES`]).
    added: usize,
}

impl Interpolation<'_, '_> {
    fn walk(&mut self, value: &Value) -> Result<Value, InterpolationError> {
        Ok(match value {
            Value::String(text) => self.text(text)?,
            Value::Array(items) => Value::Array(items.iter().map(|item| self.walk(item)).collect::<Result<_, _>>()?),
            Value::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (key, item) in map {
                    let key = match self.text(key)? {
                        Value::String(key) => key,
                        other => other.to_string(),
                    };
                    out.insert(key, self.walk(item)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    fn resolve(&mut self, name: &str) -> Result<Option<Value>, InterpolationError> {
        let reference = VarRef::parse(name)?;
        let Some(mut value) = (self.lookup)(&reference) else {
            self.missing.insert(name.to_string());
            return Ok(None);
        };
        for field in &reference.fields {
            value = match value.get(field) {
                Some(inner) => inner.clone(),
                None => {
                    self.missing.insert(name.to_string());
                    return Ok(None);
                }
            };
        }
        self.added = self.added.saturating_add(crate::nesting::text_size(&value));
        if self.added > MAX_INTERPOLATED_BYTES {
            return Err(InterpolationError::TooLarge);
        }
        Ok(Some(value))
    }

    /// One pass over the text: each reference is looked up where it is,
    /// and what a value holds is never looked at again.
    fn text(&mut self, text: &str) -> Result<Value, InterpolationError> {
        let mut result = String::new();
        let mut copied = 0;
        for captures in REFERENCE.captures_iter(text) {
            let (reference, name) = (captures.get(0).expect("the whole match"), &captures[1]);
            if reference.len() == text.len() {
                return Ok(self.resolve(name)?.unwrap_or_else(|| Value::String(text.to_string())));
            }
            result.push_str(&text[copied..reference.start()]);
            copied = reference.end();
            match self.resolve(name)? {
                None => result.push_str(reference.as_str()),
                Some(Value::String(s)) => result.push_str(&s),
                Some(Value::Number(n)) => result.push_str(&n.to_string()),
                Some(other) => {
                    let kind = match other {
                        Value::Bool(_) => "boolean",
                        Value::Array(_) => "list",
                        Value::Object(_) => "map",
                        _ => "null",
                    };
                    return Err(InterpolationError::NotText { name: name.to_string(), kind });
                }
            }
        }
        if copied == 0 {
            return Ok(Value::String(text.to_string()));
        }
        result.push_str(&text[copied..]);
        Ok(Value::String(result))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars(reference: &VarRef) -> Option<Value> {
        match (reference.source.as_deref(), reference.path.as_str()) {
            (None, "name") => Some(json!("world")),
            (None, "count") => Some(json!(3)),
            (None, "creds") => Some(json!({ "user": "u", "a.b": "dotted" })),
            (Some("."), "local") => Some(json!(["x"])),
            (Some("vault"), "secret") => Some(json!("s3cret")),
            _ => None,
        }
    }

    #[test]
    fn parses_references() {
        let reference = VarRef::parse(r#"vault:path."a.b".c"#).unwrap();
        assert_eq!(reference.source.as_deref(), Some("vault"));
        assert_eq!(reference.path, "path");
        assert_eq!(reference.fields, vec!["a.b".to_string(), "c".to_string()]);
        assert_eq!(reference.to_string(), r#"vault:path."a.b".c"#);
        assert!(VarRef::parse(".:x").unwrap().is_local());
        assert!(VarRef::parse("a..b").is_err());
        assert!(VarRef::parse(r#""s":x"#).is_err());
    }

    #[test]
    fn whole_strings_keep_the_var_type_text_gets_strings() {
        let doc = json!({
            "greeting": "hello ((name))",
            "n": "((count))",
            "list": "((.:local))",
            "user": "((creds.user))",
            "dotted": r#"((creds."a.b"))"#,
            "secret": "((vault:secret))",
            "((name))-key": 1
        });
        let out = interpolate(&doc, &vars, Undefined::Fail).unwrap();
        assert_eq!(out["greeting"], "hello world");
        assert_eq!(out["n"], 3);
        assert_eq!(out["list"], json!(["x"]));
        assert_eq!(out["user"], "u");
        assert_eq!(out["dotted"], "dotted");
        assert_eq!(out["secret"], "s3cret");
        assert_eq!(out["world-key"], 1);
    }

    #[test]
    fn undefined_vars_are_all_named_or_kept() {
        let doc = json!(["((a))", "x ((b)) ((name))", "((creds.missing))"]);
        assert_eq!(
            interpolate(&doc, &vars, Undefined::Fail),
            Err(InterpolationError::Undefined(vec!["a".into(), "b".into(), "creds.missing".into()]))
        );
        let kept = interpolate(&doc, &vars, Undefined::Keep).unwrap();
        assert_eq!(kept, json!(["((a))", "x ((b)) world", "((creds.missing))"]));
    }

    #[test]
    fn values_are_not_interpolated_again() {
        let lookup = |reference: &VarRef| -> Option<Value> {
            Some(json!(format!("(({}))", if reference.path == "a" { "b" } else { "a" })))
        };
        assert_eq!(interpolate(&json!("((a)) ((b))"), &lookup, Undefined::Fail).unwrap(), json!("((b)) ((a))"));
    }

    #[test]
    fn text_of_many_references_is_read_once() {
        // Replacing each reference throughout the text took its length times theirs.
        let text = "((name))".repeat(200_000);
        let started = std::time::Instant::now();
        let out = interpolate(&json!(text), &vars, Undefined::Fail).unwrap();
        assert_eq!(out, json!("world".repeat(200_000)));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn values_used_many_times_add_a_bounded_amount() {
        let long = "x".repeat(1024 * 1024);
        let lookup = |_: &VarRef| -> Option<Value> { Some(json!({ "text": long })) };
        let used = |times: usize| json!({ "whole": vec!["((v))"; times], "inside": "((v.text))" });
        assert!(interpolate(&used(14), &lookup, Undefined::Fail).is_ok());
        assert_eq!(interpolate(&used(15), &lookup, Undefined::Fail), Err(InterpolationError::TooLarge));
    }

    #[test]
    fn maps_do_not_fit_inside_text() {
        let err = interpolate(&json!("user: ((creds))"), &vars, Undefined::Fail).unwrap_err();
        assert!(err.to_string().contains("map"), "{err}");
        assert_eq!(references(&json!({ "a": ["((x))", { "((y.z))": "((.:w))" }] })).len(), 3);
    }
}
