//! The secret of the redaction tests and every form in which it could
//! leak. It holds a quote, a backslash, a newline and non-ASCII text, so
//! escaped forms of it would show too.

/// The value of `((topsecret))` (no comma: `--dummy-creds-var` splits on it).
pub const SECRET: &str = "tôp\"sec\\ret\nl1ne-zwei";

/// Every way the secret could show: whole or line by line, raw, escaped
/// once (JSON) or twice (JSON quoting a script's JSON), or with non-ASCII
/// escaped as Python writes it.
pub fn secret_forms() -> Vec<String> {
    let escape = |text: &str| {
        let quoted = serde_json::Value::String(text.to_string()).to_string();
        quoted[1..quoted.len() - 1].to_string()
    };
    let mut forms = Vec::new();
    for piece in [SECRET, "tôp\"sec\\ret", "l1ne-zwei"] {
        forms.push(piece.to_string());
        forms.push(escape(piece));
        forms.push(escape(&escape(piece)));
        forms.push(escape(piece).replace('ô', "\\u00f4"));
    }
    forms
}

#[track_caller]
pub fn assert_no_secret(what: &str, text: &str) {
    for form in secret_forms() {
        assert!(!text.contains(&form), "{what} shows the secret as {form:?}:\n{text}");
    }
}

/// The fixtures of the redaction tests: `pipeline.yml` and `types/`.
pub fn fixture(path: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run under cargo"))
        .join("tests/fixtures/redaction")
        .join(path)
}
