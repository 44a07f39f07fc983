//! Which jobs a pattern names: a group's `jobs`, a get's `passed`. Each
//! pattern is a glob over every job's name, so patterns and jobs multiply:
//! a distinct pattern is matched once, one without wildcards is looked up,
//! and what matching may cost in all is bounded.

use std::collections::HashMap;
use std::rc::Rc;

use super::glob::Glob;

/// The most steps (a character of a pattern against one of a name)
/// matching a configuration's distinct wildcard patterns against its jobs'
/// names may take. Real configurations take well under a million.
pub const MAX_GLOB_STEPS: usize = 100_000_000;

/// The most jobs a configuration's patterns may name in all, a pattern
/// counting the jobs it names each time it is used: each is a group
/// membership, a `passed` constraint to check, a way to a cycle. Real
/// configurations name a few thousand.
pub const MAX_PATTERN_MATCHES: usize = 100_000;

pub struct JobPatterns<'a> {
    /// Each job's name, as characters, in the configuration's order.
    names: Vec<Vec<char>>,
    by_name: HashMap<&'a str, Vec<usize>>,
    matched: HashMap<String, Rc<[usize]>>,
    steps_left: usize,
    matches_left: usize,
    exceeded: Option<String>,
}

impl<'a> JobPatterns<'a> {
    pub fn new(names: impl IntoIterator<Item = &'a str>) -> JobPatterns<'a> {
        let mut patterns = JobPatterns {
            names: Vec::new(),
            by_name: HashMap::new(),
            matched: HashMap::new(),
            steps_left: MAX_GLOB_STEPS,
            matches_left: MAX_PATTERN_MATCHES,
            exceeded: None,
        };
        for (index, name) in names.into_iter().enumerate() {
            patterns.names.push(name.chars().collect());
            patterns.by_name.entry(name).or_default().push(index);
        }
        patterns
    }

    /// The jobs `pattern` names (their positions, in order), or `None` once
    /// the patterns so far cost more than the limits allow.
    pub fn jobs(&mut self, pattern: &str) -> Option<Rc<[usize]>> {
        if self.exceeded.is_some() {
            return None;
        }
        let jobs = match self.matched.get(pattern) {
            Some(jobs) => jobs.clone(),
            None => {
                let jobs = self.match_names(pattern)?;
                self.matched.insert(pattern.to_string(), jobs.clone());
                jobs
            }
        };
        match self.matches_left.checked_sub(jobs.len()) {
            Some(left) => {
                self.matches_left = left;
                Some(jobs)
            }
            None => {
                self.exceeded = Some(format!(
                    "job patterns (groups' jobs, passed) name more than {MAX_PATTERN_MATCHES} jobs in all"
                ));
                None
            }
        }
    }

    fn match_names(&mut self, pattern: &str) -> Option<Rc<[usize]>> {
        let glob = Glob::new(pattern);
        if let Some(name) = glob.literal() {
            return Some(self.by_name.get(name.as_str()).map(|jobs| jobs.as_slice().into()).unwrap_or_default());
        }
        let mut jobs = Vec::new();
        for (index, name) in self.names.iter().enumerate() {
            match glob.matches_within(name, &mut self.steps_left) {
                Some(true) => jobs.push(index),
                Some(false) => {}
                None => {
                    self.exceeded = Some(format!(
                        "matching job patterns (groups' jobs, passed) against the jobs' names takes more than {MAX_GLOB_STEPS} steps"
                    ));
                    return None;
                }
            }
        }
        Some(jobs.into())
    }

    /// Which limit the patterns went past, if they did: they were matched
    /// no further.
    pub fn exceeded(&self) -> Option<&str> {
        self.exceeded.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_name_jobs_by_glob_or_by_name() {
        let mut patterns = JobPatterns::new(["build", "test-unit", "test-e2e", "build"]);
        assert_eq!(*patterns.jobs("test-*").unwrap(), [1, 2]);
        assert_eq!(*patterns.jobs("build").unwrap(), [0, 3]);
        assert_eq!(*patterns.jobs("b\\uild").unwrap(), [0, 3]);
        assert!(patterns.jobs("deploy").unwrap().is_empty());
        assert_eq!(patterns.exceeded(), None);
    }

    #[test]
    fn naming_too_many_jobs_stops_matching() {
        let names: Vec<String> = (0..1000).map(|i| format!("j{i}")).collect();
        let mut patterns = JobPatterns::new(names.iter().map(String::as_str));
        for _ in 0..MAX_PATTERN_MATCHES / 1000 {
            assert_eq!(patterns.jobs("*").unwrap().len(), 1000);
        }
        assert_eq!(patterns.jobs("*"), None);
        assert_eq!(patterns.jobs("j1"), None);
        assert!(patterns.exceeded().unwrap().contains("name more than 100000 jobs"));
    }

    #[test]
    fn matching_taking_too_long_stops_matching() {
        // Each of these patterns takes about 750,000 steps against each name:
        // every start of 500 `a`s in 2,000 of them.
        let name = "a".repeat(2_000);
        let mut patterns = JobPatterns::new([name.as_str(); 3]);
        let globs: Vec<String> = (0..100).map(|i| format!("*{}{i}", "a".repeat(500))).collect();
        let stopped = globs.iter().position(|glob| patterns.jobs(glob).is_none()).expect("a limit");
        assert!((40..50).contains(&stopped), "{stopped}");
        assert!(patterns.exceeded().unwrap().contains("takes more than 100000000 steps"));
    }
}
