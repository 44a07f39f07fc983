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

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InterpolationError {
    #[error("undefined vars: {}", .0.join(", "))]
    Undefined(Vec<String>),
    #[error("cannot interpolate ((\"{name}\")): its value is a {kind}, only strings and numbers fit inside text")]
    NotText { name: String, kind: &'static str },
    #[error(transparent)]
    InvalidReference(#[from] InvalidVarRef),
}

/// Looks a var up: `None` when it is not defined. It cannot fail: what may
/// (a credential manager) is asked before interpolating, and its answers
/// are what a lookup reads.
pub type Lookup<'a> = dyn Fn(&VarRef) -> Option<Value> + 'a;

/// Replaces every `((var))` in `value`. A string that is exactly one
/// reference takes the var's value with its type; inside longer text only
/// strings and numbers fit.
pub fn interpolate(value: &Value, lookup: &Lookup<'_>, undefined: Undefined) -> Result<Value, InterpolationError> {
    let mut missing = BTreeSet::new();
    let result = walk(value, lookup, &mut missing)?;
    if undefined == Undefined::Fail && !missing.is_empty() {
        return Err(InterpolationError::Undefined(missing.into_iter().collect()));
    }
    Ok(result)
}

fn walk(value: &Value, lookup: &Lookup<'_>, missing: &mut BTreeSet<String>) -> Result<Value, InterpolationError> {
    Ok(match value {
        Value::String(text) => interpolate_text(text, lookup, missing)?,
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| walk(item, lookup, missing)).collect::<Result<_, _>>()?)
        }
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (key, item) in map {
                let key = match interpolate_text(key, lookup, missing)? {
                    Value::String(key) => key,
                    other => other.to_string(),
                };
                out.insert(key, walk(item, lookup, missing)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

fn resolve(name: &str, lookup: &Lookup<'_>) -> Result<Option<Value>, InterpolationError> {
    let reference = VarRef::parse(name)?;
    let Some(mut value) = lookup(&reference) else {
        return Ok(None);
    };
    for field in &reference.fields {
        value = match value.get(field) {
            Some(inner) => inner.clone(),
            None => return Ok(None),
        };
    }
    Ok(Some(value))
}

fn interpolate_text(
    text: &str,
    lookup: &Lookup<'_>,
    missing: &mut BTreeSet<String>,
) -> Result<Value, InterpolationError> {
    let names = names_in(text);
    if names.is_empty() {
        return Ok(Value::String(text.to_string()));
    }
    let whole = names.len() == 1 && text == format!("(({}))", names[0]);
    let mut result = text.to_string();
    for name in names {
        match resolve(&name, lookup)? {
            None => {
                missing.insert(name);
            }
            Some(value) if whole => return Ok(value),
            Some(Value::String(s)) => result = result.replace(&format!("(({name}))"), &s),
            Some(Value::Number(n)) => result = result.replace(&format!("(({name}))"), &n.to_string()),
            Some(other) => {
                let kind = match other {
                    Value::Bool(_) => "boolean",
                    Value::Array(_) => "list",
                    Value::Object(_) => "map",
                    _ => "null",
                };
                return Err(InterpolationError::NotText { name, kind });
            }
        }
    }
    Ok(Value::String(result))
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
    fn maps_do_not_fit_inside_text() {
        let err = interpolate(&json!("user: ((creds))"), &vars, Undefined::Fail).unwrap_err();
        assert!(err.to_string().contains("map"), "{err}");
        assert_eq!(references(&json!({ "a": ["((x))", { "((y.z))": "((.:w))" }] })).len(), 3);
    }
}
