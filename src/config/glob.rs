//! Shell-style globs (`*`, `?`, `[a-z]`) as groups and `passed` use them
//! to name jobs.

/// Whether `name` matches `pattern` as a whole.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    matches(&pattern, &name)
}

fn matches(pattern: &[char], name: &[char]) -> bool {
    match pattern.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|skip| matches(&pattern[1..], &name[skip..])),
        Some('?') => !name.is_empty() && matches(&pattern[1..], &name[1..]),
        Some('[') => match (class_end(pattern), name.first()) {
            (Some(end), Some(&c)) => in_class(&pattern[1..end], c) && matches(&pattern[end + 1..], &name[1..]),
            (None, Some(&'[')) => matches(&pattern[1..], &name[1..]),
            _ => false,
        },
        Some('\\') if pattern.len() > 1 => name.first() == Some(&pattern[1]) && matches(&pattern[2..], &name[1..]),
        Some(&literal) => name.first() == Some(&literal) && matches(&pattern[1..], &name[1..]),
    }
}

fn class_end(pattern: &[char]) -> Option<usize> {
    pattern.iter().skip(2).position(|c| *c == ']').map(|i| i + 2)
}

fn in_class(class: &[char], c: char) -> bool {
    let (negated, class) = match class.first() {
        Some('^') | Some('!') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut found = false;
    let mut i = 0;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == '-' {
            found |= class[i] <= c && c <= class[i + 2];
            i += 3;
        } else {
            found |= class[i] == c;
            i += 1;
        }
    }
    found != negated
}

/// Whether the pattern is well formed (balanced classes).
pub fn is_valid_glob(pattern: &str) -> bool {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '[' {
            match class_end(&chars[i..]) {
                Some(end) => i += end,
                None => return false,
            }
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("build-*", "build-linux"));
        assert!(!glob_match("build-*", "test-build-linux"));
        assert!(glob_match("b?ild", "build"));
        assert!(glob_match("job-[0-9]", "job-7"));
        assert!(!glob_match("job-[!0-9]", "job-7"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!is_valid_glob("job-[0-9"));
        assert!(is_valid_glob("job-[0-9]*"));
    }
}
