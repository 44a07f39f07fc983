//! Reading a pipeline configuration: YAML (or JSON, which is YAML) into a
//! JSON document, then into the model. Like Concourse, a configuration is
//! YAML converted to JSON before it is read, so YAML-only features
//! (anchors, `<<` merge keys) are resolved first.

use serde_json::Value;
use serde_saphyr::ExternalMessageSource;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::granit_parser::ErrorKind;

use super::model::Pipeline;
use crate::nesting::{self, MAX_DOCUMENT_DEPTH};

#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    message: String,
    line: Option<usize>,
    column: Option<usize>,
}

impl ParseError {
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    pub fn column(&self) -> Option<usize> {
        self.column
    }

    fn plain(message: impl Into<String>) -> ParseError {
        ParseError { message: message.into(), line: None, column: None }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: {}", self.message),
            (Some(line), None) => write!(f, "line {line}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParseError {}

/// The most values (maps, lists and scalars) a document may hold.
pub const MAX_YAML_NODES: usize = 250_000;
/// The most parser events (values, ends of maps and lists, aliases, ...).
pub const MAX_YAML_EVENTS: usize = 1_000_000;
/// The most aliases (`*name`) and anchors (`&name`) each.
pub const MAX_YAML_ALIASES: usize = 50_000;

/// How much a document may make the YAML parser do, so that no document,
/// however crafted (deep nesting, alias bombs), costs more than a large
/// real one. These are the parser's defaults, stated where they are used.
fn yaml_budget() -> serde_saphyr::Budget {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DOCUMENT_DEPTH;
    // `[`/`{` collections are nested by the scanner, ahead of the depth count.
    budget.flow_nesting_limit = MAX_DOCUMENT_DEPTH;
    budget.max_nodes = MAX_YAML_NODES;
    budget.max_events = MAX_YAML_EVENTS;
    budget.max_aliases = MAX_YAML_ALIASES;
    budget.max_anchors = MAX_YAML_ALIASES;
    budget
}

/// YAML or JSON text into a JSON document, at most [`MAX_DOCUMENT_DEPTH`]
/// levels deep either way.
pub fn yaml_value(bytes: &[u8]) -> Result<Value, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ParseError::plain(format!("not UTF-8 text: {e}")))?;
    if text.trim_start().starts_with('{') {
        // JSON: its own parser is faster and its positions are exact.
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            let depth = nesting::depth(&value);
            if depth > MAX_DOCUMENT_DEPTH {
                return Err(ParseError::plain(too_deep()));
            }
            return Ok(value);
        }
    }
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(yaml_budget());
    let value: Value = serde_saphyr::from_str_with_options(text, options).map_err(|err| {
        let location = err.location();
        let message = match over_limit(&err) {
            Some(message) => message,
            None => {
                // The message repeats the position and quotes the line; keep its first line.
                let message = err.to_string();
                let message = message.lines().next().unwrap_or_default().trim();
                let message = message.strip_prefix("error: ").unwrap_or(message);
                strip_position(message).to_string()
            }
        };
        ParseError { message, line: location.map(|l| l.line() as usize), column: location.map(|l| l.column() as usize) }
    })?;
    Ok(value)
}

fn too_deep() -> String {
    format!("the document is nested more than {MAX_DOCUMENT_DEPTH} levels deep")
}

/// The limit a parse error reports, in the user's terms, looking under the
/// wrappers that add source snippets and alias locations.
fn over_limit(mut err: &serde_saphyr::Error) -> Option<String> {
    loop {
        match err {
            serde_saphyr::Error::WithSnippet { error, .. } | serde_saphyr::Error::AliasError { error, .. } => {
                err = error
            }
            serde_saphyr::Error::Budget { breach, .. } => return Some(over_budget(breach)),
            serde_saphyr::Error::ExternalMessage { source, .. } => {
                return match source.as_ref() {
                    ExternalMessageSource::Parser(scan) if matches!(scan.kind(), ErrorKind::RecursionLimitExceeded) => {
                        Some(too_deep())
                    }
                    _ => None,
                };
            }
            _ => return None,
        }
    }
}

/// A budget breach in the user's terms (the parser's own message is its
/// debug form, e.g. `budget breached: Nodes { nodes: 250001 }`).
fn over_budget(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Depth { .. } => too_deep(),
        BudgetBreach::Nodes { .. } => format!("the document has more than {MAX_YAML_NODES} values"),
        BudgetBreach::Events { .. } => {
            format!("the document is too large to read: more than {MAX_YAML_EVENTS} YAML events")
        }
        BudgetBreach::Aliases { .. } => format!("the document uses more than {MAX_YAML_ALIASES} aliases"),
        BudgetBreach::Anchors { .. } => format!("the document defines more than {MAX_YAML_ALIASES} anchors"),
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => {
            format!("the document uses its {anchors} anchors {aliases} times: aliases expand too much")
        }
        BudgetBreach::Documents { .. } => "the file holds too many YAML documents".into(),
        BudgetBreach::MergeKeys { .. } => "the document uses too many merge keys (<<)".into(),
        BudgetBreach::ScalarBytes { .. } => "the document's text values are too large".into(),
        _ => "the document is too large or expands too much to read".into(),
    }
}

/// Drops a leading `line L column C:` the YAML library puts in its messages.
fn strip_position(message: &str) -> &str {
    if let Some(rest) = message.strip_prefix("line ")
        && let Some((_, after)) = rest.split_once(": ")
        && rest.split_once(": ").is_some_and(|(position, _)| position.contains("column"))
    {
        return after;
    }
    message
}

/// Reads a pipeline configuration. Errors name the line and column of bad
/// YAML, or the path of a field of the wrong type or unknown name.
pub fn parse(bytes: &[u8]) -> Result<Pipeline, ParseError> {
    let value = yaml_value(bytes)?;
    from_value(value)
}

/// Reads a pipeline from an already parsed (and interpolated) document.
pub fn from_value(value: Value) -> Result<Pipeline, ParseError> {
    if value.is_null() {
        return Ok(Pipeline::default());
    }
    if !value.is_object() {
        return Err(ParseError::plain(format!("a pipeline configuration must be a map, got {value}")));
    }
    // Names, comments and groups of a pipeline are stored as text.
    if let Some(path) = crate::nul::find_nul(&value) {
        return Err(ParseError::plain(format!("{path}: contains {}", crate::nul::DESCRIPTION)));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.inner().to_string();
        ParseError::plain(if path == "." { inner } else { format!("{path}: {inner}") })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_yaml_names_line_and_column() {
        let err = parse(b"jobs:\n- name: a\n  plan: [\n").unwrap_err();
        assert_eq!(err.line(), Some(3), "{err}");
        assert!(err.column().is_some());
        assert!(err.to_string().starts_with("line 3, column"), "{err}");
    }

    #[test]
    fn anchors_and_merge_keys_resolve() {
        let yaml = b"
resources:
- &base
  name: one
  type: mock
  source: {initial_version: v1}
- <<: *base
  name: two
  source: {initial_version: v2}
jobs: []
";
        let pipeline = parse(yaml).unwrap();
        assert_eq!(pipeline.resources[1].name, "two");
        assert_eq!(pipeline.resources[1].type_, "mock");
        assert_eq!(pipeline.resources[1].source["initial_version"], "v2");
    }

    #[test]
    fn unknown_fields_are_errors_naming_their_path() {
        let err = parse(b"jobs:\n- name: a\n  plan: []\n  bogus: 1\n").unwrap_err();
        assert!(err.to_string().contains("jobs[0]") && err.to_string().contains("bogus"), "{err}");
        let err = parse(b"jobz: []\n").unwrap_err();
        assert!(err.to_string().contains("jobz"), "{err}");
    }

    #[test]
    fn nul_characters_are_refused_naming_their_path() {
        let err = parse(b"jobs:\n- name: \"a\\0b\"\n  plan: []\n").unwrap_err();
        assert_eq!(err.to_string(), format!("jobs[0].name: contains {}", crate::nul::DESCRIPTION));
        let err = parse(br#"{"jobs":[],"display":{"background_image":"x\u0000"}}"#).unwrap_err();
        assert!(err.to_string().starts_with("display.background_image: contains a NUL"), "{err}");
    }

    #[test]
    fn documents_past_the_limits_say_which_limit_in_plain_words() {
        let deep = |levels: usize| format!("a: {}{}", "[".repeat(levels), "]".repeat(levels));
        assert!(yaml_value(deep(MAX_DOCUMENT_DEPTH - 1).as_bytes()).is_ok());
        let too_deep = "the document is nested more than 64 levels deep";
        assert!(yaml_value(deep(MAX_DOCUMENT_DEPTH).as_bytes()).unwrap_err().to_string().ends_with(too_deep));
        let json = format!("{{\"a\": {}1{}}}", "[".repeat(MAX_DOCUMENT_DEPTH), "]".repeat(MAX_DOCUMENT_DEPTH));
        assert_eq!(yaml_value(json.as_bytes()).unwrap_err().to_string(), too_deep);
        let many = format!("[{}]", vec!["1"; MAX_YAML_NODES].join(","));
        let err = yaml_value(many.as_bytes()).unwrap_err().to_string();
        assert!(err.ends_with("the document has more than 250000 values"), "{err}");
        // Aliases replaying aliases: a billion laughs.
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let previous = format!("*a{}", i - 1);
            bomb.push_str(&format!("a{i}: &a{i} [{}]\n", [previous.as_str(); 10].join(", ")));
        }
        let err = yaml_value(bomb.as_bytes()).unwrap_err().to_string();
        assert!(!err.contains("budget breached") && !err.contains('{'), "{err}");
    }

    #[test]
    fn json_bodies_parse_too() {
        let pipeline = parse(br#"{"jobs":[{"name":"a","plan":[{"get":"r"}]}]}"#).unwrap();
        assert_eq!(pipeline.jobs[0].name, "a");
    }
}
