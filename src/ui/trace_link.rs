//! `--tracing-ui-url`: where a build page links to the build's trace, as a
//! URL template with `{trace_id}` in it.

/// A checked `--tracing-ui-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceLinkTemplate(String);

const PLACEHOLDER: &str = "{trace_id}";

impl TraceLinkTemplate {
    pub fn parse(template: &str) -> Result<TraceLinkTemplate, String> {
        if !(template.starts_with("http://") || template.starts_with("https://")) {
            return Err(format!("'{template}' must be an http:// or https:// URL"));
        }
        if !template.contains(PLACEHOLDER) {
            return Err(format!("'{template}' must contain {PLACEHOLDER}, where the build's trace id goes"));
        }
        Ok(TraceLinkTemplate(template.to_string()))
    }

    /// The link to the trace of a build whose stored span context is
    /// `span_context` (a W3C carrier as JSON), if it names a trace.
    pub fn link(&self, span_context: &str) -> Option<String> {
        let carrier: std::collections::HashMap<String, String> = serde_json::from_str(span_context).ok()?;
        let trace_id = carrier.get("traceparent")?.split('-').nth(1)?;
        let valid = trace_id.len() == 32
            && trace_id.bytes().all(|b| b.is_ascii_hexdigit())
            && trace_id.bytes().any(|b| b != b'0');
        valid.then(|| self.0.replace(PLACEHOLDER, trace_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_needs_a_url_and_the_placeholder() {
        assert!(TraceLinkTemplate::parse("tempo.example/{trace_id}").unwrap_err().contains("http"));
        assert!(TraceLinkTemplate::parse("https://tempo.example/explore").unwrap_err().contains("{trace_id}"));
    }

    #[test]
    fn the_link_carries_the_trace_id_of_the_stored_context() {
        let template = TraceLinkTemplate::parse("https://tempo.example/explore?traceId={trace_id}").unwrap();
        let stored = r#"{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#;
        assert_eq!(
            template.link(stored).as_deref(),
            Some("https://tempo.example/explore?traceId=4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(template.link(r#"{"traceparent":"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}"#), None);
        assert_eq!(template.link("not json"), None);
    }
}
