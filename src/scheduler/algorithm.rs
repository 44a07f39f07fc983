//! Input resolution: which version each `get` of a job's next build uses.
//!
//! Pure and synchronous, over a snapshot of the pipeline's history, so it
//! is fast and testable without a database.
//!
//! The idea: inputs are chosen one at a time, each trying its candidate
//! versions in order of preference (newest first for `latest`, the next
//! unused one for `every`, the one version for a pin). An input with
//! `passed: [J]` may only take a version some successful build of J used
//! or produced; when several inputs name J, their versions must come from
//! one and the same build of J. For each upstream job the search keeps the
//! set of its builds still consistent with the choices so far; a choice
//! that empties a set is undone and the next candidate tried
//! (backtracking). Inputs with the most `passed` jobs go first, where the
//! constraints prune most.

use std::collections::{BTreeSet, HashMap, HashSet};

pub type ResourceId = i64;
pub type VersionId = i64;
pub type JobId = i64;
pub type BuildId = i64;

/// A version of a resource in the current history.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionEntry {
    pub id: VersionId,
    pub check_order: i64,
    pub enabled: bool,
}

/// A build and the versions it used or produced.
pub type BuildVersions = (BuildId, Vec<(ResourceId, VersionId)>);

/// What the pipeline's history says, for one scheduling pass.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Each resource's versions (any order).
    pub versions: HashMap<ResourceId, Vec<VersionEntry>>,
    /// For each job, its successful builds and the versions each used as an
    /// input or produced as an output.
    pub successful_builds: HashMap<JobId, Vec<BuildVersions>>,
    /// Versions the job being resolved used before, by input name.
    pub used: HashMap<String, HashSet<VersionId>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum VersionChoice {
    Latest,
    Every,
    Pinned(VersionId),
    /// Pinned to a version that is not (or no longer) in the history.
    PinnedMissing(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    pub name: String,
    pub resource: ResourceId,
    pub passed: Vec<JobId>,
    pub version: VersionChoice,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedInput {
    pub name: String,
    pub resource: ResourceId,
    pub version: VersionId,
    /// The job never used this version for this input before.
    pub first_occurrence: bool,
}

/// Why inputs could not be resolved, by input name.
pub type Unresolved = Vec<(String, String)>;

/// How many candidates the search may try before giving up: histories are
/// never adversarial enough to need more, and a bad one must not stall
/// the scheduler.
const SEARCH_BUDGET: usize = 200_000;

struct Index<'a> {
    history: &'a History,
    /// Per upstream job: (resource, version) → the builds that had it.
    builds_with: HashMap<JobId, HashMap<(ResourceId, VersionId), BTreeSet<BuildId>>>,
    /// Per upstream job: all its successful builds.
    all_builds: HashMap<JobId, BTreeSet<BuildId>>,
}

impl<'a> Index<'a> {
    fn new(history: &'a History, jobs: &HashSet<JobId>) -> Index<'a> {
        let mut builds_with: HashMap<JobId, HashMap<(ResourceId, VersionId), BTreeSet<BuildId>>> = HashMap::new();
        let mut all_builds: HashMap<JobId, BTreeSet<BuildId>> = HashMap::new();
        for job in jobs {
            let by_version = builds_with.entry(*job).or_default();
            let all = all_builds.entry(*job).or_default();
            for (build, versions) in history.successful_builds.get(job).into_iter().flatten() {
                all.insert(*build);
                for pair in versions {
                    by_version.entry(*pair).or_default().insert(*build);
                }
            }
        }
        Index { history, builds_with, all_builds }
    }
}

/// Why an input has no version to offer at all.
#[derive(Debug, thiserror::Error)]
enum NoCandidates {
    /// Pinned to a version the history has never had (or no longer has).
    #[error("pinned version {0} is not available")]
    PinnedMissing(String),
    #[error("pinned version {0} is not available (disabled, or from another source)")]
    PinnedUnavailable(VersionId),
    #[error("no versions available")]
    NoVersions,
}

/// Candidate versions of an input, most preferred first.
fn candidates(input: &InputSpec, history: &History) -> Result<Vec<VersionId>, NoCandidates> {
    let mut versions: Vec<&VersionEntry> =
        history.versions.get(&input.resource).into_iter().flatten().filter(|v| v.enabled).collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.check_order));
    match &input.version {
        VersionChoice::PinnedMissing(version) => Err(NoCandidates::PinnedMissing(version.clone())),
        VersionChoice::Pinned(id) => {
            if versions.iter().any(|v| v.id == *id) {
                Ok(vec![*id])
            } else {
                Err(NoCandidates::PinnedUnavailable(*id))
            }
        }
        _ if versions.is_empty() => Err(NoCandidates::NoVersions),
        VersionChoice::Latest => Ok(versions.iter().map(|v| v.id).collect()),
        VersionChoice::Every => {
            let used = history.used.get(&input.name);
            let newest_used =
                versions.iter().filter(|v| used.is_some_and(|u| u.contains(&v.id))).map(|v| v.check_order).max();
            // Oldest first among versions newer than the newest used; then
            // the already used ones, newest first (no new build for those).
            let mut newer: Vec<&VersionEntry> =
                versions.iter().copied().filter(|v| newest_used.is_none_or(|n| v.check_order > n)).collect();
            newer.sort_by_key(|v| v.check_order);
            let older = versions.iter().copied().filter(|v| newest_used.is_some_and(|n| v.check_order <= n));
            Ok(newer.into_iter().chain(older).map(|v| v.id).collect())
        }
    }
}

/// Resolves every input, or says for each unresolvable one why.
pub fn resolve(inputs: &[InputSpec], history: &History) -> Result<Vec<ResolvedInput>, Unresolved> {
    let upstream: HashSet<JobId> = inputs.iter().flat_map(|i| i.passed.iter().copied()).collect();
    let index = Index::new(history, &upstream);

    let mut errors = Vec::new();
    let mut choices: Vec<Vec<VersionId>> = Vec::with_capacity(inputs.len());
    for input in inputs {
        match candidates(input, history) {
            Ok(mut versions) => {
                // Only versions every upstream job had can satisfy `passed`.
                versions.retain(|v| {
                    input
                        .passed
                        .iter()
                        .all(|job| index.builds_with.get(job).is_some_and(|m| m.contains_key(&(input.resource, *v))))
                });
                if versions.is_empty() {
                    errors.push((input.name.clone(), "no satisfiable builds from passed jobs".to_string()));
                }
                choices.push(versions);
            }
            Err(reason) => {
                errors.push((input.name.clone(), reason.to_string()));
                choices.push(Vec::new());
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // Most constrained first.
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(inputs[i].passed.len()), choices[i].len()));
    let mut search = Search {
        inputs,
        choices: &choices,
        order: &order,
        index: &index,
        consistent: upstream.iter().map(|job| (*job, index.all_builds.get(job).cloned().unwrap_or_default())).collect(),
        chosen: vec![0; inputs.len()],
        budget: SEARCH_BUDGET,
    };
    match search.assign() {
        Some(true) => Ok(inputs
            .iter()
            .zip(&search.chosen)
            .map(|(input, version)| ResolvedInput {
                name: input.name.clone(),
                resource: input.resource,
                version: *version,
                first_occurrence: !index.history.used.get(&input.name).is_some_and(|u| u.contains(version)),
            })
            .collect()),
        Some(false) => Err(inputs
            .iter()
            .filter(|i| !i.passed.is_empty())
            .map(|i| (i.name.clone(), "no satisfiable builds from passed jobs".to_string()))
            .collect()),
        None => Err(inputs
            .iter()
            .map(|i| (i.name.clone(), "gave up resolving inputs: the history is too tangled".to_string()))
            .collect()),
    }
}

struct Search<'a> {
    inputs: &'a [InputSpec],
    choices: &'a [Vec<VersionId>],
    order: &'a [usize],
    index: &'a Index<'a>,
    /// Per upstream job, its builds consistent with the choices so far.
    consistent: HashMap<JobId, BTreeSet<BuildId>>,
    chosen: Vec<VersionId>,
    budget: usize,
}

/// One input's place in the search: which of its versions to try next, and
/// what the version being tried narrowed (to put back before the next).
#[derive(Default)]
struct Frame {
    next: usize,
    saved: Vec<(JobId, BTreeSet<BuildId>)>,
}

impl Search<'_> {
    /// `Some(true)` when every input could be chosen, `Some(false)` when
    /// they cannot, `None` when the budget ran out. Backtracks with a stack
    /// of its own: a job may have as many inputs as its configuration lists.
    fn assign(&mut self) -> Option<bool> {
        let mut frames = vec![Frame::default()];
        while let Some(depth) = frames.len().checked_sub(1) {
            let Some(&input_index) = self.order.get(depth) else { return Some(true) };
            let frame = &mut frames[depth];
            for (job, previous) in frame.saved.drain(..) {
                self.consistent.insert(job, previous);
            }
            let Some(&version) = self.choices[input_index].get(frame.next) else {
                // Every version of this input failed: back to the one before.
                frames.pop();
                continue;
            };
            frame.next += 1;
            if self.budget == 0 {
                return None;
            }
            self.budget -= 1;
            let input = &self.inputs[input_index];
            let mut narrowed = Vec::with_capacity(input.passed.len());
            let mut fits = true;
            for job in &input.passed {
                let had = self.index.builds_with.get(job).and_then(|m| m.get(&(input.resource, version)));
                let current = &self.consistent[job];
                let next: BTreeSet<BuildId> = match had {
                    Some(builds) => current.intersection(builds).copied().collect(),
                    None => BTreeSet::new(),
                };
                if next.is_empty() {
                    fits = false;
                    break;
                }
                narrowed.push((*job, next));
            }
            if !fits {
                continue;
            }
            frame.saved = narrowed
                .into_iter()
                .map(|(job, next)| (job, std::mem::replace(self.consistent.get_mut(&job).expect("upstream job"), next)))
                .collect();
            self.chosen[input_index] = version;
            frames.push(Frame::default());
        }
        Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(resource: ResourceId, ids: &[VersionId]) -> (ResourceId, Vec<VersionEntry>) {
        (resource, ids.iter().map(|id| VersionEntry { id: *id, check_order: *id, enabled: true }).collect())
    }

    fn input(name: &str, resource: ResourceId, passed: &[JobId], version: VersionChoice) -> InputSpec {
        InputSpec { name: name.into(), resource, passed: passed.to_vec(), version }
    }

    fn chosen(result: Result<Vec<ResolvedInput>, Unresolved>) -> Vec<VersionId> {
        result.expect("resolvable").iter().map(|i| i.version).collect()
    }

    #[test]
    fn a_job_with_a_great_many_inputs_resolves_on_a_small_stack() {
        // A configuration may list tens of thousands of gets: resolving them
        // must not take stack per input (this thread has 128 KiB).
        let resolved = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(|| {
                let history = History { versions: [versions(1, &[1, 2])].into(), ..History::default() };
                let inputs: Vec<InputSpec> =
                    (0..50_000).map(|i| input(&format!("r{i}"), 1, &[], VersionChoice::Latest)).collect();
                resolve(&inputs, &history).map(|resolved| resolved.len())
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert_eq!(resolved, Ok(50_000));
    }

    #[test]
    fn latest_takes_the_newest_enabled_version() {
        let mut history = History { versions: [versions(1, &[1, 2, 3])].into(), ..History::default() };
        assert_eq!(chosen(resolve(&[input("r", 1, &[], VersionChoice::Latest)], &history)), [3]);
        history.versions.get_mut(&1).unwrap()[2].enabled = false;
        assert_eq!(chosen(resolve(&[input("r", 1, &[], VersionChoice::Latest)], &history)), [2]);
    }

    #[test]
    fn first_occurrence_is_about_this_input_of_this_job() {
        let history = History {
            versions: [versions(1, &[1, 2])].into(),
            used: [("r".to_string(), [2].into())].into(),
            ..History::default()
        };
        let resolved = resolve(&[input("r", 1, &[], VersionChoice::Latest)], &history).unwrap();
        assert!(!resolved[0].first_occurrence);
        let other_name = resolve(&[input("other", 1, &[], VersionChoice::Latest)], &history).unwrap();
        assert!(other_name[0].first_occurrence);
    }

    #[test]
    fn every_walks_versions_in_order() {
        let mut history = History { versions: [versions(1, &[1, 2, 3])].into(), ..History::default() };
        let every = [input("r", 1, &[], VersionChoice::Every)];
        assert_eq!(chosen(resolve(&every, &history)), [1], "nothing used yet: the oldest");
        history.used.insert("r".into(), [1].into());
        assert_eq!(chosen(resolve(&every, &history)), [2]);
        history.used.insert("r".into(), [1, 2, 3].into());
        let resolved = resolve(&every, &history).unwrap();
        assert_eq!((resolved[0].version, resolved[0].first_occurrence), (3, false), "all used: nothing new");
    }

    #[test]
    fn pins_win_and_missing_pins_say_so() {
        let history = History { versions: [versions(1, &[1, 2, 3])].into(), ..History::default() };
        assert_eq!(chosen(resolve(&[input("r", 1, &[], VersionChoice::Pinned(2))], &history)), [2]);
        let missing = resolve(&[input("r", 1, &[], VersionChoice::Pinned(9))], &history).unwrap_err();
        assert!(missing[0].1.contains("pinned version 9"), "{missing:?}");
    }

    #[test]
    fn passed_takes_versions_upstream_builds_used() {
        let history = History {
            versions: [versions(1, &[1, 2, 3])].into(),
            successful_builds: [(10, vec![(100, vec![(1, 1)]), (101, vec![(1, 2)])])].into(),
            ..History::default()
        };
        assert_eq!(chosen(resolve(&[input("r", 1, &[10], VersionChoice::Latest)], &history)), [2], "3 never passed");
        let none = History { successful_builds: HashMap::new(), ..history.clone() };
        let err = resolve(&[input("r", 1, &[10], VersionChoice::Latest)], &none).unwrap_err();
        assert_eq!(err[0].1, "no satisfiable builds from passed jobs");
    }

    #[test]
    fn inputs_sharing_an_upstream_job_come_from_one_build() {
        // Job 10 built (a2, b1) and later (a3, b2); job 11 only ever saw a2.
        // a must pass 10 and 11, b must pass 10: a=2 forces b=1 (same build of 10).
        let history = History {
            versions: [versions(1, &[1, 2, 3]), versions(2, &[1, 2])].into(),
            successful_builds: [
                (10, vec![(100, vec![(1, 2), (2, 1)]), (101, vec![(1, 3), (2, 2)])]),
                (11, vec![(200, vec![(1, 2)])]),
            ]
            .into(),
            ..History::default()
        };
        let inputs = [input("a", 1, &[10, 11], VersionChoice::Latest), input("b", 2, &[10], VersionChoice::Latest)];
        assert_eq!(chosen(resolve(&inputs, &history)), [2, 1]);
        // Without the second upstream job, the newest consistent pair wins.
        let inputs = [input("a", 1, &[10], VersionChoice::Latest), input("b", 2, &[10], VersionChoice::Latest)];
        assert_eq!(chosen(resolve(&inputs, &history)), [3, 2]);
    }

    #[test]
    fn backtracking_finds_an_older_consistent_combination() {
        // b's newest version 2 only appears with a=1 in job 10; a's newest (3)
        // only with b=1. The newest full combination consistent for both is (3, 1).
        let history = History {
            versions: [versions(1, &[1, 3]), versions(2, &[1, 2])].into(),
            successful_builds: [(10, vec![(100, vec![(1, 1), (2, 2)]), (101, vec![(1, 3), (2, 1)])])].into(),
            ..History::default()
        };
        let inputs = [input("a", 1, &[10], VersionChoice::Latest), input("b", 2, &[10], VersionChoice::Latest)];
        let resolved = chosen(resolve(&inputs, &history));
        assert!(resolved == [3, 1] || resolved == [1, 2], "{resolved:?}");
    }

    #[test]
    fn large_histories_resolve_quickly() {
        let mut history = History::default();
        for resource in 1..=5 {
            history.versions.insert(resource, versions(resource, &(1..=2000).collect::<Vec<_>>()).1);
        }
        for job in 1..=10 {
            let builds = (0..500)
                .map(|b| {
                    let build = job * 10_000 + b;
                    (build, (1..=5).map(|resource| (resource, 4 * b + resource)).collect())
                })
                .collect();
            history.successful_builds.insert(job, builds);
        }
        let inputs: Vec<InputSpec> =
            (1..=5).map(|r| input(&format!("r{r}"), r, &[1, 2, 3], VersionChoice::Latest)).collect();
        let started = std::time::Instant::now();
        let resolved = chosen(resolve(&inputs, &history));
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "{:?}", started.elapsed());
        // Build 499 used version 2001 of r5, which the history lacks: build 498 is the newest usable.
        assert_eq!(resolved, (1..=5).map(|r| 4 * 498 + r).collect::<Vec<_>>());

        // Upstream jobs that never built the same combination: give up fast, not never.
        for job in 1..=3 {
            let builds = (0..500)
                .map(|b| (job * 10_000 + b, (1..=5).map(|r| (r, (4 * b + r + 7 * job * r) % 2000 + 1)).collect()))
                .collect();
            history.successful_builds.insert(job, builds);
        }
        let started = std::time::Instant::now();
        assert!(resolve(&inputs, &history).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }
}
