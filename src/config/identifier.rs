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

/// An identifier that is empty: the one kind Concourse refuses outright.
/// `context` names where it is (`jobs[0]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{context}: identifier cannot be an empty string")]
pub struct EmptyIdentifier {
    pub context: String,
}

/// `Err` for an empty name; `Ok(Some(warning))` for one that is allowed but
/// not a valid identifier. `context` names where it is (`jobs.build`).
pub fn validate_identifier(name: &str, context: &str) -> Result<Option<Warning>, EmptyIdentifier> {
    if name.is_empty() {
        return Err(EmptyIdentifier { context: context.to_string() });
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

/// Longest team or pipeline name, in characters. Names appear in every URL
/// of the team or pipeline and in `fly` tables; real ones are far shorter.
pub const MAX_NAME_CHARS: usize = 128;

/// Characters that show as nothing or change how the text around them is
/// laid out: a name holding them looks like another name.
fn is_invisible_or_directional(c: char) -> bool {
    matches!(c,
        '\u{00AD}' // soft hyphen
        | '\u{061C}' // Arabic letter mark
        | '\u{180E}' // Mongolian vowel separator
        | '\u{200B}'..='\u{200F}' // zero-width space, (non-)joiner, LRM, RLM
        | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // bidi isolates
        | '\u{FEFF}' // zero-width no-break space
    )
}

/// Why a team or pipeline name cannot be used, if it cannot. These names
/// are path segments of URLs: each must survive being one and read as
/// itself. Odd but usable names only get a [`validate_identifier`] warning.
pub fn unusable_name(name: &str) -> Option<String> {
    let length = name.chars().count();
    let problem = if name.is_empty() {
        "must not be empty".to_string()
    } else if length > MAX_NAME_CHARS {
        format!("is {length} characters long; at most {MAX_NAME_CHARS} are allowed")
    } else if name == "." || name == ".." {
        format!("must not be '{name}': URLs drop such path segments")
    } else if name.contains('/') {
        "must not contain '/'".to_string()
    } else if let Some(c) = name.chars().find(|c| c.is_control()) {
        format!("must not contain control characters (found U+{:04X})", c as u32)
    } else if name.trim() != name {
        "must not start or end with whitespace".to_string()
    } else if let Some(c) = name.chars().find(|c| is_invisible_or_directional(*c)) {
        format!("must not contain invisible or text-direction characters (found U+{:04X})", c as u32)
    } else {
        return None;
    };
    Some(problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_urls_cannot_carry_or_that_pose_as_others_are_unusable() {
        assert_eq!(unusable_name("my-pipeline_1.0"), None);
        assert_eq!(unusable_name("My Pipeline"), None, "odd names only warn");
        assert_eq!(unusable_name(&"x".repeat(MAX_NAME_CHARS)), None);
        let problem = |name: &str| unusable_name(name).unwrap_or_else(|| panic!("{name:?} should be unusable"));
        assert_eq!(problem(""), "must not be empty");
        assert_eq!(problem(&"x".repeat(5000)), "is 5000 characters long; at most 128 are allowed");
        assert!(problem(".").contains("'.'"));
        assert!(problem("..").contains("'..'"));
        assert_eq!(problem("a/b"), "must not contain '/'");
        assert!(problem("a\u{0}b").contains("U+0000"));
        for name in [" ", "  ", " lead", "trail ", "\u{3000}wide"] {
            assert_eq!(problem(name), "must not start or end with whitespace", "{name:?}");
        }
        for (name, code) in
            [("evil\u{202E}txt", "U+202E"), ("a\u{200B}b", "U+200B"), ("\u{2066}x", "U+2066"), ("x\u{200F}", "U+200F")]
        {
            assert!(problem(name).ends_with(&format!("(found {code})")), "{name:?}");
        }
    }

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
