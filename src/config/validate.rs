//! Validation: every error and warning of a configuration at once, each
//! naming where it is (`jobs.build.plan.do[1].get(repo): ...`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;

use super::glob::is_valid_glob;
use super::identifier::{unusable_name, validate_identifier};
use super::job_patterns::JobPatterns;
use super::model::{Job, Pipeline};
use super::step::{Step, StepKind};
use super::{Validation, Warning, across, vars};

pub fn validate(pipeline: &Pipeline) -> Validation {
    let mut v = Validation::default();
    let mut patterns = JobPatterns::new(pipeline.jobs.iter().map(|job| job.name.as_str()));
    groups(pipeline, &mut patterns, &mut v);
    resources(pipeline, &mut v);
    resource_types(pipeline, &mut v);
    var_sources(pipeline, &mut v);
    let upstream = jobs(pipeline, &mut patterns, &mut v);
    display(pipeline, &mut v);
    match patterns.exceeded() {
        Some(limit) => v.errors.push(limit.to_string()),
        // Only once every `passed` pattern was matched are the cycles known.
        None => cycles(pipeline, &upstream, &mut v),
    }
    v
}

fn identifier(v: &mut Validation, name: &str, context: &str) {
    match validate_identifier(name, context) {
        Err(error) => v.errors.push(error.to_string()),
        Ok(Some(warning)) => v.warnings.push(warning),
        Ok(None) => {}
    }
}

/// `section.name`, or `section[i]` for a nameless entry.
fn location(section: &str, index: usize, name: &str) -> String {
    if name.is_empty() { format!("{section}[{index}]") } else { format!("{section}.{name}") }
}

/// Duplicate names, reported the way Concourse words them.
fn duplicates<'a>(v: &mut Validation, section: &str, names: impl Iterator<Item = &'a str>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, name) in names.enumerate() {
        if name.is_empty() {
            continue;
        }
        if let Some(first) = seen.get(name) {
            v.errors.push(format!("{section}[{first}] and {section}[{index}] have the same name ('{name}')"));
        } else {
            seen.insert(name, index);
        }
    }
}

/// The most text the names of its groups take, stored with every job in
/// them (all jobs together): a long name on a group of many jobs
/// multiplies. Real configurations take a few kilobytes.
const MAX_GROUP_NAMES_BYTES: usize = 16 * 1024 * 1024;

fn groups(pipeline: &Pipeline, patterns: &mut JobPatterns<'_>, v: &mut Validation) {
    let mut grouped: BTreeMap<&str, bool> = pipeline.jobs.iter().map(|j| (j.name.as_str(), false)).collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    // The last group (its position + 1) listing each job, and what listing them takes.
    let mut listed_by: Vec<usize> = vec![0; pipeline.jobs.len()];
    let mut names_bytes = 0_usize;
    for (index, group) in pipeline.groups.iter().enumerate() {
        identifier(v, &group.name, &location("groups", index, &group.name));
        *counts.entry(group.name.as_str()).or_default() += 1;
        for pattern in &group.jobs {
            if !is_valid_glob(pattern) {
                v.errors.push(format!("invalid glob expression '{pattern}' for group '{}'", group.name));
                continue;
            }
            let Some(jobs) = patterns.jobs(pattern) else { continue };
            if jobs.is_empty() {
                v.errors.push(format!("no jobs match '{pattern}' for group '{}'", group.name));
            }
            for &job in jobs.iter() {
                grouped.insert(pipeline.jobs[job].name.as_str(), true);
                if listed_by[job] != index + 1 {
                    listed_by[job] = index + 1;
                    names_bytes = names_bytes.saturating_add(group.name.len());
                }
            }
        }
        for resource in &group.resources {
            if pipeline.resource(resource).is_none() {
                v.errors.push(format!("group '{}' has unknown resource '{resource}'", group.name));
            }
        }
    }
    for (name, count) in counts {
        if count > 1 {
            v.errors.push(format!("group '{name}' appears {count} times. Duplicate names are not allowed."));
        }
    }
    if names_bytes > MAX_GROUP_NAMES_BYTES {
        v.errors.push(format!(
            "groups: the names of their groups, stored with each job, come to more than {MAX_GROUP_NAMES_BYTES} bytes"
        ));
    }
    // Past the limits, which jobs are in no group is not known.
    if !pipeline.groups.is_empty() && patterns.exceeded().is_none() {
        for (job, in_a_group) in grouped {
            if !in_a_group {
                v.errors.push(format!("job '{job}' belongs to no group"));
            }
        }
    }
}

fn check_every(v: &mut Validation, context: &str, value: &Option<String>) {
    if let Some(every) = value
        && every != "never"
        && crate::duration::parse(every).is_err()
    {
        v.errors.push(format!("{context}: invalid check_every '{every}': expected a duration (like 1m) or 'never'"));
    }
}

fn resources(pipeline: &Pipeline, v: &mut Validation) {
    duplicates(v, "resources", pipeline.resources.iter().map(|r| r.name.as_str()));
    let used = used_resources(pipeline);
    for (index, resource) in pipeline.resources.iter().enumerate() {
        let context = location("resources", index, &resource.name);
        identifier(v, &resource.name, &context);
        if resource.type_.is_empty() {
            v.errors.push(format!("{context} has no type"));
        }
        check_every(v, &context, &resource.check_every);
        if !resource.check_timeout.is_empty() && crate::duration::parse(&resource.check_timeout).is_err() {
            v.errors.push(format!("{context}: invalid check_timeout '{}'", resource.check_timeout));
        }
        if let Some(version) = &resource.version
            && let Some((key, _)) = version.iter().find(|(_, value)| !value.is_string())
        {
            v.errors.push(format!("{context}: version field '{key}' must be a string"));
        }
        if !resource.name.is_empty() && !used.contains(resource.name.as_str()) {
            v.errors.push(format!("resource '{}' is not used", resource.name));
        }
    }
}

fn used_resources(pipeline: &Pipeline) -> HashSet<&str> {
    pipeline.jobs.iter().flat_map(resources_used_by).collect()
}

fn resource_types(pipeline: &Pipeline, v: &mut Validation) {
    duplicates(v, "resource_types", pipeline.resource_types.iter().map(|t| t.name.as_str()));
    for (index, resource_type) in pipeline.resource_types.iter().enumerate() {
        let context = location("resource_types", index, &resource_type.name);
        identifier(v, &resource_type.name, &context);
        if resource_type.type_.is_empty() {
            v.errors.push(format!("{context} has no type"));
        }
        check_every(v, &context, &resource_type.check_every);
    }
}

fn var_sources(pipeline: &Pipeline, v: &mut Validation) {
    duplicates(v, "var_sources", pipeline.var_sources.iter().map(|s| s.name.as_str()));
    for (index, source) in pipeline.var_sources.iter().enumerate() {
        identifier(v, &source.name, &location("var_sources", index, &source.name));
        // The build runner sets sources up from the same list. A config
        // without vars is set up here too, so its mistakes show now.
        if !crate::creds::registry::is_known(&source.type_) {
            let unknown = crate::creds::registry::VarSourceError::UnknownType {
                name: source.name.clone(),
                kind: source.type_.clone(),
            };
            v.errors.push(unknown.to_string());
        } else if vars::references(&source.config).is_empty()
            && let Err(error) = crate::creds::registry::from_var_source(&source.name, &source.type_, &source.config)
        {
            v.errors.push(error.to_string());
        }
    }
    // A var source's config may use another one's vars; they must not form
    // a cycle. Each source waits for the distinct sources it uses, and is
    // resolved once they all are: every dependency is looked at once.
    let names: HashSet<&str> = pipeline.var_sources.iter().map(|s| s.name.as_str()).collect();
    let uses: Vec<BTreeSet<String>> = pipeline
        .var_sources
        .iter()
        .map(|source| {
            vars::references(&source.config)
                .into_iter()
                .filter_map(|name| vars::VarRef::parse(&name).ok()?.source)
                .filter(|used| names.contains(used.as_str()))
                .collect()
        })
        .collect();
    let mut waiting_for: Vec<usize> = uses.iter().map(BTreeSet::len).collect();
    let mut users: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, used) in uses.iter().enumerate() {
        for name in used {
            users.entry(name.as_str()).or_default().push(index);
        }
    }
    let mut ready: Vec<usize> = (0..uses.len()).filter(|&index| waiting_for[index] == 0).collect();
    let mut resolved: HashSet<&str> = HashSet::new();
    while let Some(index) = ready.pop() {
        let name = pipeline.var_sources[index].name.as_str();
        if !resolved.insert(name) {
            continue;
        }
        for &user in users.get(name).into_iter().flatten() {
            waiting_for[user] -= 1;
            if waiting_for[user] == 0 {
                ready.push(user);
            }
        }
    }
    let stuck: Vec<&str> = pipeline
        .var_sources
        .iter()
        .zip(&waiting_for)
        .filter(|(_, waiting)| **waiting > 0)
        .map(|(source, _)| source.name.as_str())
        .collect();
    if !stuck.is_empty() {
        v.errors.push(format!("could not resolve inter-dependent var sources: {}", stuck.join(", ")));
    }
}

fn display(pipeline: &Pipeline, v: &mut Validation) {
    let Some(display) = &pipeline.display else { return };
    let image = &display.background_image;
    if let Some((scheme, _)) = image.split_once("://")
        && scheme != "http"
        && scheme != "https"
    {
        v.errors.push("display: background_image scheme must be either http, https or relative".into());
    }
}

/// Jobs (by name) and the jobs their `passed` constraints name.
type Upstream<'a> = HashMap<&'a str, BTreeSet<&'a str>>;

fn jobs<'a>(pipeline: &'a Pipeline, patterns: &mut JobPatterns<'a>, v: &mut Validation) -> Upstream<'a> {
    let mut upstream = Upstream::new();
    if pipeline.jobs.is_empty() {
        v.errors.push("jobs: pipeline must contain at least one job".into());
        return upstream;
    }
    duplicates(v, "jobs", pipeline.jobs.iter().map(|j| j.name.as_str()));
    let resources_used: Vec<HashSet<&str>> = pipeline.jobs.iter().map(resources_used_by).collect();
    for (index, job) in pipeline.jobs.iter().enumerate() {
        let context = location("jobs", index, &job.name);
        identifier(v, &job.name, &context);
        retention(job, &context, v);
        if job.max_in_flight < 0 {
            v.errors.push(format!("{context} has negative max_in_flight: {}", job.max_in_flight));
        }
        let mut steps = StepValidator {
            pipeline,
            v,
            patterns,
            resources_used: &resources_used,
            upstream: BTreeSet::new(),
            context: vec![context.clone(), ".plan".into()],
            gets: HashSet::new(),
            scopes: vec![HashSet::new()],
        };
        steps.sequence(&job.plan);
        let hooks = [
            ("on_success", &job.on_success),
            ("on_failure", &job.on_failure),
            ("on_abort", &job.on_abort),
            ("on_error", &job.on_error),
            ("ensure", &job.ensure),
        ];
        for (key, hook) in hooks {
            if let Some(hook) = hook {
                steps.context = vec![context.clone(), format!(".{key}")];
                steps.step(hook);
            }
        }
        upstream.insert(job.name.as_str(), steps.upstream);
    }
    upstream
}

fn retention(job: &Job, context: &str, v: &mut Validation) {
    if job.build_logs_to_retain != 0 {
        v.warnings.push(Warning {
            kind: "deprecated_field".into(),
            message: format!("{context}.build_logs_to_retain is deprecated. Use build_log_retention instead."),
        });
    }
    if job.build_log_retention.is_some() && job.build_logs_to_retain != 0 {
        v.errors.push(format!("{context} can't use both build_log_retention and build_logs_to_retain"));
    } else if job.build_logs_to_retain < 0 {
        v.errors.push(format!("{context} has negative build_logs_to_retain: {}", job.build_logs_to_retain));
    }
    if let Some(retention) = &job.build_log_retention {
        for (field, value) in [
            ("builds", retention.builds),
            ("days", retention.days),
            ("minimum_succeeded_builds", retention.minimum_succeeded_builds),
        ] {
            if value < 0 {
                v.errors.push(format!("{context} has negative build_log_retention.{field}: {value}"));
            }
        }
        if retention.builds > 0 && retention.minimum_succeeded_builds > retention.builds {
            v.errors.push(format!(
                "{context} has build_log_retention.minimum_succeeded_builds: {} greater than build_log_retention.builds: {}",
                retention.minimum_succeeded_builds, retention.builds
            ));
        }
    }
}

struct StepValidator<'a, 'v> {
    pipeline: &'a Pipeline,
    v: &'v mut Validation,
    patterns: &'v mut JobPatterns<'a>,
    /// The resources each job gets or puts, by the job's position.
    resources_used: &'v [HashSet<&'a str>],
    /// The jobs this job's `passed` constraints name.
    upstream: BTreeSet<&'a str>,
    context: Vec<String>,
    /// Names of gets seen in this job: each may appear once.
    gets: HashSet<String>,
    /// Local vars declared by `load_var` and `across`, innermost scope last.
    scopes: Vec<HashSet<String>>,
}

impl StepValidator<'_, '_> {
    fn here(&self) -> String {
        self.context.concat()
    }

    fn error(&mut self, message: impl std::fmt::Display) {
        let here = self.here();
        self.v.errors.push(format!("{here}: {message}"));
    }

    fn warning(&mut self, kind: &str, message: impl std::fmt::Display) {
        let here = self.here();
        self.v.warnings.push(Warning { kind: kind.into(), message: format!("{here}: {message}") });
    }

    fn within(&mut self, segment: String, check: impl FnOnce(&mut Self)) {
        self.context.push(segment);
        check(self);
        self.context.pop();
    }

    fn sequence(&mut self, steps: &[Step]) {
        self.within(".do".into(), |s| {
            for (index, step) in steps.iter().enumerate() {
                s.within(format!("[{index}]"), |s| s.step(step));
            }
        });
    }

    fn identifier(&mut self, name: &str) {
        let here = self.here();
        identifier(self.v, name, &here);
    }

    fn declare_local_var(&mut self, name: &str) {
        let current = self.scopes.last().is_some_and(|scope| scope.contains(name));
        if current {
            self.error("repeated var name");
        } else if self.scopes.iter().any(|scope| scope.contains(name)) {
            self.warning("var_shadowed", format!("shadows local var '{name}'"));
        }
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.to_string());
        }
    }

    fn step(&mut self, step: &Step) {
        if !step.unknown_fields.is_empty() {
            let fields: Vec<String> = step.unknown_fields.iter().map(|f| format!("\"{f}\"")).collect();
            self.error(format!("unknown fields [{}]", fields.join(" ")));
        }
        let across = step.across.as_ref();
        if let Some(vars) = across {
            self.scopes.push(HashSet::new());
            self.within(".across".into(), |s| {
                if vars.is_empty() {
                    s.error("no vars specified");
                }
                // A list given by a ((var)) is counted when the step runs.
                let lengths: Vec<usize> =
                    vars.iter().map(|var| var.values.as_ref().and_then(Value::as_array).map_or(1, Vec::len)).collect();
                if let Err(message) = across::combinations(&lengths) {
                    s.error(message);
                }
                for (index, var) in vars.iter().enumerate() {
                    s.within(format!("[{index}]"), |s| {
                        s.declare_local_var(&var.var);
                        if let Some(limit) = &var.max_in_flight {
                            let valid = matches!(limit, Value::String(all) if all == "all")
                                || limit.as_i64().is_some_and(|n| n > 0);
                            if !valid {
                                s.within(".max_in_flight".into(), |s| s.error("must be greater than 0"));
                            }
                        }
                    });
                }
            });
        }
        self.core(step, across.is_some());
        if across.is_some() {
            self.scopes.pop();
        }
        if let Some(timeout) = &step.timeout
            && crate::duration::parse(timeout).is_err()
            && vars::names_in(timeout).is_empty()
        {
            self.within(".timeout".into(), |s| s.error(format!("invalid duration '{timeout}'")));
        }
        if let Some(attempts) = step.attempts
            && attempts <= 0
        {
            self.within(".attempts".into(), |s| s.error("must be greater than 0"));
        }
        let hooks = [
            ("on_success", &step.on_success),
            ("on_failure", &step.on_failure),
            ("on_abort", &step.on_abort),
            ("on_error", &step.on_error),
            ("ensure", &step.ensure),
        ];
        for (key, hook) in hooks {
            if let Some(hook) = hook {
                self.within(format!(".{key}"), |s| s.step(hook));
            }
        }
    }

    fn core(&mut self, step: &Step, in_across: bool) {
        match &step.kind {
            StepKind::Get(get) => self.within(format!(".get({})", get.name), |s| {
                s.identifier(&get.name);
                if !s.gets.insert(get.name.clone()) {
                    s.error("repeated name");
                }
                let resource = get.resource_name().to_string();
                if s.pipeline.resource(&resource).is_none() {
                    s.error(format!("unknown resource '{resource}'"));
                }
                if let Some(version) = &get.version {
                    let valid = matches!(version, Value::String(v) if v == "latest" || v == "every")
                        || version.as_object().is_some_and(|m| m.values().all(Value::is_string));
                    if !valid {
                        s.error(format!("invalid version {version}: expected latest, every or a version"));
                    }
                }
                s.within(".passed".into(), |s| {
                    for pattern in &get.passed {
                        let Some(matching) = s.patterns.jobs(pattern) else { return };
                        if matching.is_empty() {
                            s.error(format!("no matching job(s) for '{pattern}'"));
                        }
                        for &job in matching.iter() {
                            let name = s.pipeline.jobs[job].name.as_str();
                            s.upstream.insert(name);
                            if !s.resources_used[job].contains(resource.as_str()) {
                                s.error(format!("job '{name}' does not interact with resource '{resource}'"));
                            }
                        }
                    }
                });
            }),
            StepKind::Put(put) => self.within(format!(".put({})", put.name), |s| {
                s.identifier(&put.name);
                let resource = put.resource_name();
                if s.pipeline.resource(resource).is_none() {
                    s.error(format!("unknown resource '{resource}'"));
                }
            }),
            StepKind::Task(task) => self.within(format!(".task({})", task.name), |s| {
                // Names built from across vars are checked once interpolated.
                if !in_across {
                    s.identifier(&task.name);
                }
                match (&task.config, task.config_path.is_empty()) {
                    (None, true) => s.error("must specify either `file:` or `config:`"),
                    (Some(_), false) => s.error("must specify one of `file:` or `config:`, not both"),
                    _ => {}
                }
                if let Some(config) = &task.config {
                    if (!config.rootfs_uri.is_empty() || config.image_resource.is_some()) && !task.image_artifact.is_empty() {
                        s.warning(
                            "pipeline",
                            "specifies image: on the step but also specifies an image under config: - the image: on the step takes precedence",
                        );
                    }
                    s.within(".config".into(), |s| {
                        for problem in config.problems() {
                            s.error(problem);
                        }
                    });
                }
                if task.hermetic {
                    s.warning("pipeline", "specifies `hermetic:` only works against worker containerd runtime");
                }
            }),
            StepKind::SetPipeline(set) => self.within(format!(".set_pipeline({})", set.name), |s| {
                if !in_across {
                    match unusable_name(&set.name) {
                        Some(problem) => s.error(format!("pipeline name {problem}")),
                        None => s.identifier(&set.name),
                    }
                }
                if set.file.is_empty() {
                    s.error("no file specified");
                }
            }),
            StepKind::LoadVar(load) => self.within(format!(".load_var({})", load.name), |s| {
                s.identifier(&load.name);
                s.declare_local_var(&load.name);
                if load.file.is_empty() {
                    s.error("no file specified");
                }
                if !["", "json", "yaml", "yml", "trim", "raw"].contains(&load.format.as_str()) {
                    s.error(format!("invalid format '{}': expected json, yaml, yml, trim or raw", load.format));
                }
            }),
            StepKind::Run(run) => self.within(format!(".run({}.{})", run.type_, run.message), |s| {
                // Prototype messages must be proper identifiers: a warning would be an error here.
                match validate_identifier(&run.message, &s.here()) {
                    Err(error) => s.v.errors.push(error.to_string()),
                    Ok(Some(warning)) => s.v.errors.push(warning.message),
                    Ok(None) => {}
                }
                let known = s.pipeline.prototypes.iter().any(|p| p.get("name").and_then(Value::as_str) == Some(run.type_.as_str()));
                if !known {
                    s.error(format!("unknown prototype '{}'", run.type_));
                }
            }),
            StepKind::Try(inner) => self.within(".try".into(), |s| s.step(inner)),
            StepKind::Do(steps) => self.sequence(steps),
            StepKind::InParallel(parallel) => self.within(".in_parallel".into(), |s| {
                if parallel.limit.is_some_and(|l| l < 0) {
                    s.error("limit must not be negative");
                }
                for (index, sub) in parallel.steps.iter().enumerate() {
                    s.within(format!(".steps[{index}]"), |s| s.step(sub));
                }
            }),
        }
    }
}

/// The resources a job gets or puts.
fn resources_used_by(job: &Job) -> HashSet<&str> {
    let mut used = HashSet::new();
    job.walk(&mut |step| match &step.kind {
        StepKind::Get(get) => {
            used.insert(get.resource_name());
        }
        StepKind::Put(put) => {
            used.insert(put.resource_name());
        }
        _ => {}
    });
    used
}

/// `passed` constraints must not loop back to the job itself.
fn cycles(pipeline: &Pipeline, upstream: &Upstream<'_>, v: &mut Validation) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    // Depth first with a stack of our own: a chain of jobs is as long as
    // the configuration makes it, too long for the thread's stack.
    let none = BTreeSet::new();
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    for job in &pipeline.jobs {
        if marks.contains_key(job.name.as_str()) {
            continue;
        }
        marks.insert(&job.name, Mark::Visiting);
        let mut path = vec![(job.name.as_str(), upstream.get(job.name.as_str()).unwrap_or(&none).iter())];
        while let Some((current, next)) = path.last_mut() {
            let current = *current;
            match next.next() {
                Some(&up) => match marks.get(up) {
                    Some(Mark::Visiting) => {
                        v.errors.push(format!("pipeline contains a cycle that starts at Job '{up}'"));
                        return;
                    }
                    Some(Mark::Done) => {}
                    None => {
                        marks.insert(up, Mark::Visiting);
                        path.push((up, upstream.get(up).unwrap_or(&none).iter()));
                    }
                },
                None => {
                    marks.insert(current, Mark::Done);
                    path.pop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    /// Jobs `j0`..`jN`, each getting `r` passed the one before.
    fn chain(jobs: usize, looping: bool) -> Pipeline {
        let mut yaml = String::from("resources:\n- name: r\n  type: mock\njobs:\n");
        for i in 0..jobs {
            let passed = if i > 0 {
                format!(", passed: [j{}]", i - 1)
            } else if looping {
                format!(", passed: [j{}]", jobs - 1)
            } else {
                String::new()
            };
            yaml.push_str(&format!("- name: j{i}\n  plan: [{{get: r{passed}}}]\n"));
        }
        parse(yaml.as_bytes()).unwrap()
    }

    /// Var sources `s0`..`sN`, each using the next one's vars (the last
    /// the first's when `looping`).
    fn var_source_chain(sources: usize, looping: bool) -> Pipeline {
        let mut yaml =
            String::from("resources: [{name: r, type: mock}]\njobs: [{name: j, plan: [{get: r}]}]\nvar_sources:\n");
        for i in 0..sources {
            let next = if i + 1 < sources { Some(i + 1) } else { looping.then_some(0) };
            let config = next.map(|n| format!("{{x: \"((s{n}:x))\"}}")).unwrap_or_else(|| "{}".into());
            yaml.push_str(&format!("- {{name: s{i}, type: dummy, config: {config}}}\n"));
        }
        parse(yaml.as_bytes()).unwrap()
    }

    #[test]
    fn var_sources_using_each_other_resolve_in_one_pass_or_name_their_cycle() {
        // Listed so that each pass resolved only the last one, this took their number squared.
        let started = std::time::Instant::now();
        assert_eq!(validate(&var_source_chain(20_000, false)).errors, Vec::<String>::new());
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        assert_eq!(
            validate(&var_source_chain(3, true)).errors,
            ["could not resolve inter-dependent var sources: s0, s1, s2"]
        );
    }

    #[test]
    fn var_sources_atc_cannot_run_are_refused() {
        let with_sources = |sources: &str| {
            let yaml = format!(
                "resources: [{{name: r, type: mock}}]\njobs: [{{name: j, plan: [{{get: r}}]}}]\nvar_sources: {sources}\n"
            );
            validate(&parse(yaml.as_bytes()).unwrap()).errors
        };
        assert_eq!(
            with_sources("[{name: s, type: conjur, config: {}}]"),
            [
                "unknown credential manager type: 'conjur' (var_sources.s): expected one of dummy, vault, ssm, secretsmanager"
            ]
        );
        assert_eq!(
            with_sources("[{name: v, type: vault, config: {client_token: t}}]"),
            ["var source 'v' (vault): url: missing"]
        );
        // With vars in it, the config is only known when a build sets the source up.
        assert_eq!(
            with_sources("[{name: v, type: vault, config: {url: ((url)), client_token: t}}]"),
            Vec::<String>::new()
        );
        assert_eq!(with_sources("[{name: d, type: dummy, config: {vars: {a: b}}}]"), Vec::<String>::new());
    }

    #[test]
    fn patterns_naming_every_job_from_every_job_stop_at_the_limit() {
        // Every job's get passed every job: each pair was matched, checked and
        // followed for cycles, in validation and again in storage.
        let mut yaml = String::from("resources: [{name: r, type: mock}]\njobs:\n");
        for i in 0..2_000 {
            yaml.push_str(&format!("- {{name: j{i}, plan: [{{get: r, passed: [\"*\"]}}]}}\n"));
        }
        let pipeline = parse(yaml.as_bytes()).unwrap();
        let started = std::time::Instant::now();
        let errors = validate(&pipeline).errors;
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        assert_eq!(errors, ["job patterns (groups' jobs, passed) name more than 100000 jobs in all"]);
    }

    #[test]
    fn group_names_stored_with_their_jobs_are_bounded() {
        let yaml = |name_bytes: usize| {
            let mut yaml = format!("groups: [{{name: {}, jobs: [\"*\"]}}]\njobs:\n", "g".repeat(name_bytes));
            for i in 0..16 {
                yaml.push_str(&format!("- {{name: j{i}, plan: []}}\n"));
            }
            parse(yaml.as_bytes()).unwrap()
        };
        assert_eq!(validate(&yaml(1024 * 1024)).errors, Vec::<String>::new());
        assert_eq!(
            validate(&yaml(1024 * 1024 + 1)).errors,
            ["groups: the names of their groups, stored with each job, come to more than 16777216 bytes"]
        );
    }

    #[test]
    fn a_long_chain_of_passed_jobs_is_checked_for_cycles_on_a_small_stack() {
        // A chain is as long as the configuration makes it; this thread has 256 KiB.
        let (open, closed) = (chain(2_000, false), chain(2_000, true));
        let errors = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || (validate(&open).errors, validate(&closed).errors))
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert_eq!(errors.0, Vec::<String>::new());
        assert_eq!(errors.1, ["pipeline contains a cycle that starts at Job 'j0'"]);
    }
}
