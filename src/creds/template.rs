//! Concourse's secret name templates (`/concourse/{{.Team}}/{{.Secret}}`):
//! where a manager looks a var up for a team and pipeline. Only the three
//! placeholders Concourse offers are accepted, so a typo is refused when
//! atc starts instead of silently never matching.

const PLACEHOLDERS: [&str; 3] = ["{{.Team}}", "{{.Pipeline}}", "{{.Secret}}"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretTemplate {
    text: String,
}

impl SecretTemplate {
    /// Checks `text`: not empty, and every `{{...}}` one of the placeholders.
    pub fn parse(text: &str) -> Result<SecretTemplate, String> {
        if text.trim().is_empty() {
            return Err("a secret template may not be empty".into());
        }
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            let after = &rest[start..];
            let Some(end) = after.find("}}") else {
                return Err(format!("'{text}': unclosed {{{{"));
            };
            let placeholder = &after[..end + 2];
            if !PLACEHOLDERS.contains(&placeholder) {
                return Err(format!(
                    "'{text}': unknown placeholder {placeholder} (expected {{{{.Team}}}}, {{{{.Pipeline}}}} or {{{{.Secret}}}})"
                ));
            }
            rest = &after[end + 2..];
        }
        Ok(SecretTemplate { text: text.to_string() })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The name of `secret` for `team` (and `pipeline`); `None` when the
    /// template names the pipeline and the lookup has none (a team-level
    /// lookup skips pipeline templates, as Concourse does).
    pub fn expand(&self, team: &str, pipeline: Option<&str>, secret: &str) -> Option<String> {
        let pipeline = match pipeline {
            Some(pipeline) => pipeline,
            None if self.text.contains("{{.Pipeline}}") => return None,
            None => "",
        };
        Some(self.text.replace("{{.Team}}", team).replace("{{.Pipeline}}", pipeline).replace("{{.Secret}}", secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_names_the_secret_for_a_team_and_pipeline() {
        let template = SecretTemplate::parse("/concourse/{{.Team}}/{{.Pipeline}}/{{.Secret}}").unwrap();
        assert_eq!(template.expand("main", Some("p"), "token").as_deref(), Some("/concourse/main/p/token"));
        assert_eq!(template.expand("main", None, "token"), None);
        let team = SecretTemplate::parse("/ci/{{.Team}}-{{.Secret}}").unwrap();
        assert_eq!(team.expand("main", None, "token").as_deref(), Some("/ci/main-token"));
    }

    #[test]
    fn an_empty_template_or_an_unknown_placeholder_is_refused() {
        assert_eq!(SecretTemplate::parse(" ").unwrap_err(), "a secret template may not be empty");
        assert_eq!(
            SecretTemplate::parse("/c/{{.team}}/{{.Secret}}").unwrap_err(),
            "'/c/{{.team}}/{{.Secret}}': unknown placeholder {{.team}} (expected {{.Team}}, {{.Pipeline}} or {{.Secret}})"
        );
        assert_eq!(SecretTemplate::parse("/c/{{.Secret").unwrap_err(), "'/c/{{.Secret': unclosed {{");
    }
}
