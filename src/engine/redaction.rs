//! Keeping a build's secrets out of what it records. The values a build
//! looked up are registered here; every event payload, error message and
//! stored piece of resource metadata passes through [`Redactor`] and comes
//! out with each secret replaced by `((redacted))`.
//!
//! Payloads are redacted as JSON trees, string by string, so a secret
//! holding a quote, a backslash or a newline is found whatever escaping
//! its serialized form would use. Text that a process printed may hold a
//! secret JSON-encoded (a resource script echoing its request), so the
//! escaped forms of each secret are secrets too.

use std::sync::{Arc, RwLock};

use serde_json::Value;

const REDACTED: &str = "((redacted))";

/// Shorter values would redact ordinary text everywhere (Concourse ignores
/// them too).
const MIN_SECRET_BYTES: usize = 3;

/// The secrets of one build, shared by everything that records it.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Every form of every secret, longest first: a secret containing a
    /// shorter one is replaced whole.
    forms: Arc<RwLock<Vec<String>>>,
    /// `--enable-redact-secrets=false`: the operator wants secrets shown.
    disabled: bool,
}

impl Redactor {
    /// A redactor for a build, or one that lets every secret through when
    /// `enabled` is false.
    pub fn new(enabled: bool) -> Redactor {
        Redactor { disabled: !enabled, ..Redactor::default() }
    }

    /// Remembers the strings `value` holds, itself or in its map fields.
    /// Lists and numbers are not secrets in Concourse (pipelines iterate
    /// over loaded lists with `across` and print them), so they stay
    /// readable here too.
    pub fn register(&self, value: &Value) {
        if self.disabled {
            return;
        }
        let mut strings = Vec::new();
        collect_strings(value, &mut strings);
        if strings.is_empty() {
            return;
        }
        let mut forms = self.forms.write().unwrap_or_else(|p| p.into_inner());
        for form in strings.iter().flat_map(|secret| forms_of(secret)) {
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
        forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    }

    /// `text` with every secret replaced by `((redacted))`.
    pub fn redact(&self, text: &str) -> String {
        let forms = self.forms.read().unwrap_or_else(|p| p.into_inner());
        replace_all(&forms, text)
    }

    /// `value` with every secret in its strings and keys replaced.
    pub fn redact_json(&self, value: Value) -> Value {
        let forms = self.forms.read().unwrap_or_else(|p| p.into_inner());
        if forms.is_empty() { value } else { redact_tree(&forms, value) }
    }

    /// Where, at the end of `text`, a secret may have begun without
    /// ending yet (the rest may come in the next chunk of output):
    /// `text.len()` when nowhere.
    pub fn unfinished_secret_at(&self, text: &str) -> usize {
        let forms = self.forms.read().unwrap_or_else(|p| p.into_inner());
        let Some(longest) = forms.first().map(String::len) else { return text.len() };
        let earliest = text.len().saturating_sub(longest - 1);
        (earliest..text.len())
            .filter(|&at| text.is_char_boundary(at))
            .find(|&at| {
                let tail = &text[at..];
                forms.iter().any(|form| form.len() > tail.len() && form.starts_with(tail))
            })
            .unwrap_or(text.len())
    }
}

fn collect_strings(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(s) => into.push(s.clone()),
        Value::Object(map) => map.values().for_each(|item| collect_strings(item, into)),
        _ => {}
    }
}

/// What to look for of one secret: the whole value and, as Concourse
/// does, each of its lines (output is often printed line by line), each
/// trimmed (no form starts with the newline ending an ordinary line) and
/// both raw and as JSON encoders write it inside a string.
fn forms_of(secret: &str) -> Vec<String> {
    let mut pieces = vec![secret.trim()];
    if secret.contains('\n') {
        pieces.extend(secret.split('\n').map(str::trim));
    }
    let mut forms: Vec<String> = Vec::new();
    for piece in pieces.into_iter().filter(|piece| piece.len() >= MIN_SECRET_BYTES) {
        for form in [piece.to_string(), json_escaped(piece, Escape::Minimal)]
            .into_iter()
            .chain([json_escaped(piece, Escape::NonAscii), json_escaped(piece, Escape::Html)])
        {
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
    }
    forms
}

/// The escaping styles of common JSON encoders: serde's and jq's
/// (`"`, `\` and control characters only), Python's default (also every
/// non-ASCII character), Go's default (also `<`, `>` and `&`).
#[derive(Clone, Copy)]
enum Escape {
    Minimal,
    NonAscii,
    Html,
}

/// `text` as it appears between the quotes of a JSON string.
fn json_escaped(text: &str, style: Escape) -> String {
    let quoted = Value::String(text.to_string()).to_string();
    let minimal = &quoted[1..quoted.len() - 1];
    let mut escaped = String::with_capacity(minimal.len());
    for c in minimal.chars() {
        let unicode = match style {
            Escape::Minimal => false,
            Escape::NonAscii => !c.is_ascii(),
            Escape::Html => matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}'),
        };
        if unicode {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                escaped.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            escaped.push(c);
        }
    }
    escaped
}

fn replace_all(forms: &[String], text: &str) -> String {
    forms.iter().fold(text.to_string(), |text, form| {
        if text.contains(form.as_str()) { text.replace(form.as_str(), REDACTED) } else { text }
    })
}

fn redact_tree(forms: &[String], value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(replace_all(forms, &text)),
        Value::Array(items) => Value::Array(items.into_iter().map(|item| redact_tree(forms, item)).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter().map(|(key, item)| (replace_all(forms, &key), redact_tree(forms, item))).collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SECRET: &str = "tôp\"sec\\ret\nl1ne-zwei";

    fn redactor() -> Redactor {
        let redactor = Redactor::default();
        redactor.register(&json!(SECRET));
        redactor
    }

    #[test]
    fn secrets_are_redacted_in_every_string_and_key_of_a_payload() {
        let payload = json!({
            "config": { "run": { "args": ["-c", format!("echo {SECRET}")] } },
            SECRET: 1,
            "metadata": [{ "name": "p", "value": format!("<{SECRET}>") }],
        });
        let redacted = redactor().redact_json(payload);
        assert_eq!(
            redacted,
            json!({
                "config": { "run": { "args": ["-c", "echo ((redacted))"] } },
                "((redacted))": 1,
                "metadata": [{ "name": "p", "value": "<((redacted))>" }],
            })
        );
        assert!(!redacted.to_string().contains("sec\\\\ret"));
    }

    #[test]
    fn escaped_forms_and_single_lines_are_redacted_in_text() {
        let redactor = redactor();
        let serde = Value::String(SECRET.into()).to_string();
        assert_eq!(redactor.redact(&format!("got {serde}")), "got \"((redacted))\"");
        assert_eq!(redactor.redact("got \"t\\u00f4p\\\"sec\\\\ret\""), "got \"((redacted))\"");
        assert_eq!(redactor.redact("first tôp\"sec\\ret then l1ne-zwei"), "first ((redacted)) then ((redacted))");
    }

    #[test]
    fn go_style_escapes_of_html_characters_are_redacted() {
        let redactor = Redactor::default();
        redactor.register(&json!("a<b>&c"));
        assert_eq!(redactor.redact(r#"{"p":"a\u003cb\u003e\u0026c"}"#), r#"{"p":"((redacted))"}"#);
    }

    #[test]
    fn short_values_lists_and_numbers_are_not_secrets() {
        let redactor = Redactor::default();
        redactor.register(&json!({ "short": "ab", "list": ["listed"], "number": 12345, "nested": { "k": "kept" } }));
        assert_eq!(redactor.redact("ab listed 12345 kept"), "ab listed 12345 ((redacted))");
    }

    #[test]
    fn the_unfinished_start_of_a_secret_is_found_at_the_end_of_text() {
        let redactor = redactor();
        assert_eq!(redactor.unfinished_secret_at("say tô"), 4);
        assert_eq!(redactor.unfinished_secret_at("say tôp\"sec\\re"), 4);
        assert_eq!(redactor.unfinished_secret_at("say l1ne"), 4);
        assert_eq!(redactor.unfinished_secret_at("say hello\n"), 10);
        assert_eq!(Redactor::default().unfinished_secret_at("anything"), 8);
    }
}
