//! Reading a pipeline configuration: YAML (or JSON, which is YAML) into a
//! JSON document, then into the model. Like Concourse, a configuration is
//! YAML converted to JSON before it is read, so YAML-only features
//! (anchors, `<<` merge keys) are resolved first.

use serde_json::Value;

use super::model::Pipeline;

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

/// YAML or JSON text into a JSON document.
pub fn yaml_value(bytes: &[u8]) -> Result<Value, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ParseError::plain(format!("not UTF-8 text: {e}")))?;
    if text.trim_start().starts_with('{') {
        // JSON: its own parser is faster and its positions are exact.
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            return Ok(value);
        }
    }
    let value: Value = serde_saphyr::from_str(text).map_err(|err| {
        let location = err.location();
        // The message repeats the position and quotes the line; keep its first line.
        let message = err.to_string();
        let message = message.lines().next().unwrap_or_default().trim();
        let message = message.strip_prefix("error: ").unwrap_or(message);
        let message = strip_position(message);
        ParseError {
            message: message.to_string(),
            line: location.map(|l| l.line() as usize),
            column: location.map(|l| l.column() as usize),
        }
    })?;
    Ok(value)
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
    fn json_bodies_parse_too() {
        let pipeline = parse(br#"{"jobs":[{"name":"a","plan":[{"get":"r"}]}]}"#).unwrap();
        assert_eq!(pipeline.jobs[0].name, "a");
    }
}
