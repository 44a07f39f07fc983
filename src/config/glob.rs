//! Shell-style globs (`*`, `?`, `[a-z]`) as groups and `passed` use them
//! to name jobs.

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// `*`: any run of characters.
    Star,
    /// `?`: any one character.
    Any,
    /// `[...]`: one character of the class (without its brackets).
    Class(Box<[char]>),
    Literal(char),
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Star | Token::Any => true,
            Token::Class(class) => in_class(class, c),
            Token::Literal(literal) => *literal == c,
        }
    }
}

/// A pattern, read once to be matched against many names.
#[derive(Debug, Clone, PartialEq)]
pub struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        let pattern: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::with_capacity(pattern.len());
        let mut i = 0;
        while i < pattern.len() {
            let token = match pattern[i] {
                '*' => Token::Star,
                '?' => Token::Any,
                '[' => match class_end(&pattern[i..]) {
                    Some(end) => {
                        let class = Token::Class(pattern[i + 1..i + end].into());
                        i += end;
                        class
                    }
                    // An unclosed bracket is itself.
                    None => Token::Literal('['),
                },
                '\\' if i + 1 < pattern.len() => {
                    i += 1;
                    Token::Literal(pattern[i])
                }
                c => Token::Literal(c),
            };
            tokens.push(token);
            i += 1;
        }
        Glob { tokens }
    }

    /// The one name the pattern matches, when it has no wildcards.
    pub fn literal(&self) -> Option<String> {
        self.tokens.iter().map(|token| if let Token::Literal(c) = token { Some(*c) } else { None }).collect()
    }

    /// Whether `name` (its characters) matches as a whole, or `None` when
    /// finding out would take more than `steps_left` steps (each step
    /// takes one off). A loop that backtracks only to the last `*`: no
    /// pattern costs more than `pattern × name` steps.
    pub fn matches_within(&self, name: &[char], steps_left: &mut usize) -> Option<bool> {
        let tokens = &self.tokens;
        let (mut t, mut n) = (0, 0);
        // The last `*` seen, and where in the name it would next resume.
        let mut resume: Option<(usize, usize)> = None;
        while n < name.len() {
            *steps_left = steps_left.checked_sub(1)?;
            match tokens.get(t) {
                Some(Token::Star) => {
                    resume = Some((t, n));
                    t += 1;
                }
                Some(token) if token.matches(name[n]) => {
                    t += 1;
                    n += 1;
                }
                _ => match resume {
                    // Let the last `*` take one more character, and retry.
                    Some((star, from)) => {
                        resume = Some((star, from + 1));
                        t = star + 1;
                        n = from + 1;
                    }
                    None => return Some(false),
                },
            }
        }
        *steps_left = steps_left.checked_sub(tokens.len() - t)?;
        Some(tokens[t..].iter().all(|token| *token == Token::Star))
    }
}

/// Whether `name` matches `pattern` as a whole, however many steps that
/// takes.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let mut unbounded = usize::MAX;
    Glob::new(pattern).matches_within(&name, &mut unbounded).unwrap_or(false)
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
        assert!(glob_match("a*b*c", "aXbYc") && !glob_match("a*b*c", "aXbY"));
        assert!(glob_match("\\*", "*") && !glob_match("\\*", "x"));
        assert!(glob_match("job-[", "job-[") && !glob_match("job-[", "job-x"));
        assert!(glob_match("[]]", "]"));
        assert!(glob_match("**", "") && glob_match("", "") && !glob_match("", "x"));
    }

    #[test]
    fn hostile_patterns_cost_little() {
        // Backtracking into every star would take longer than the universe.
        let stars = "*a".repeat(5_000);
        let name = "a".repeat(4_999);
        let started = std::time::Instant::now();
        assert!(!glob_match(&stars, &name));
        assert!(glob_match(&stars, &"a".repeat(5_000)));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }
}
