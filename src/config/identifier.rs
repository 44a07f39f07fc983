//! Identifiers: names of jobs, resources, steps, pipelines and teams.
//! Concourse accepts any non-empty name but warns about names that are not
//! lowercase letters, digits, `-`, `_` and `.` starting with a letter or digit.

use super::Warning;

fn is_lowercase_letter(c: char) -> bool {
    c.is_alphabetic() && !c.is_uppercase()
}

fn allowed_first(c: char) -> bool {
    is_lowercase_letter(c) || c.is_ascii_digit()
}

fn allowed(c: char) -> bool {
    allowed_first(c) || matches!(c, '-' | '_' | '.')
}

/// `Err` for an empty name; `Ok(Some(warning))` for one that is allowed but
/// not a valid identifier. `context` names where it is (`jobs.build`).
pub fn validate_identifier(name: &str, context: &str) -> Result<Option<Warning>, String> {
    if name.is_empty() {
        return Err(format!("{context}: identifier cannot be an empty string"));
    }
    let reason = if name.chars().all(|c| c.is_ascii_digit()) {
        Some("cannot be just numbers".to_string())
    } else if !name.chars().next().is_some_and(allowed_first) {
        Some("must start with a lowercase letter or a number".to_string())
    } else {
        name.chars().skip(1).find(|c| !allowed(*c)).map(|c| format!("illegal character '{c}'"))
    };
    Ok(reason.map(|reason| Warning {
        kind: "invalid_identifier".into(),
        message: format!("{context}: '{name}' is not a valid identifier: {reason}"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert_eq!(validate_identifier("build-1.2_x", "jobs.x"), Ok(None));
        assert_eq!(validate_identifier("über", "jobs.x"), Ok(None));
        assert!(validate_identifier("", "jobs[0]").is_err());
        let warn = |name| validate_identifier(name, "c").unwrap().unwrap().message;
        assert!(warn("Build").contains("must start with a lowercase letter"));
        assert!(warn("a b").contains("illegal character ' '"));
        assert!(warn("42").contains("cannot be just numbers"));
    }
}
