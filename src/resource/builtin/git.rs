//! `git`: commits of a repository, through the system `git`, as
//! concourse/git-resource does it. Versions are `{"ref": SHA}` (with
//! `tag_filter`/`tag_regex`, `{"ref": TAG, "commit": SHA}`).
//!
//! The commonly used fields work as upstream; the rarer ones (GPG
//! verification, git-crypt, HTTPS tunnels, submodule credentials, sparse
//! checkouts, ...) are refused with a message saying so, rather than
//! ignored: drop the real git-resource scripts into `--resource-types-dir`
//! as type `git` to get them.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, ExitStatus, Stdio};

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Command, safe_join};
use crate::runtime::local::PathLeavesBase;

/// Keys of upstream's source schema this implementation refuses when set.
const UNSUPPORTED_SOURCE_KEYS: &[&str] = &[
    "private_key_user",
    "private_key_passphrase",
    "forward_agent",
    "sparse_paths",
    "submodule_credentials",
    "commit_verification_keys",
    "commit_verification_key_ids",
    "gpg_keyserver",
    "git_crypt_key",
    "https_tunnel",
    "search_remote_refs",
];
const UNSUPPORTED_PARAM_KEYS: &[&str] = &["rebase_strategy", "rebase_strategy_option"];
const SKIP_CI_PATTERNS: [&str; 2] = [r"\[ci\sskip\]", r"\[skip\sci\]"];
/// How many times `out` retries a push rejected because the branch moved.
const MAX_PUSH_ATTEMPTS: usize = 50;
const MAX_SHALLOW_DEPTH: u64 = 127;

#[derive(Debug, Default, Deserialize)]
struct Source {
    uri: Option<String>,
    branch: Option<String>,
    private_key: Option<String>,
    username: Option<String>,
    password: Option<String>,
    paths: Option<Vec<String>>,
    ignore_paths: Option<Vec<String>>,
    skip_ssl_verification: Option<bool>,
    tag_filter: Option<String>,
    tag_regex: Option<String>,
    tag_behaviour: Option<String>,
    fetch_tags: Option<bool>,
    git_config: Option<Vec<ConfigPair>>,
    disable_ci_skip: Option<bool>,
    commit_filter: Option<CommitFilter>,
    version_depth: Option<u64>,
    debug: Option<bool>,
    #[serde(flatten)]
    unsupported: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
struct ConfigPair {
    name: String,
    value: Value,
}

#[derive(Debug, Default, Deserialize)]
struct CommitFilter {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    include_all_match: bool,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    exclude_all_match: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetParams {
    depth: Option<u64>,
    fetch: Option<Vec<String>>,
    fetch_tags: Option<bool>,
    submodules: Option<Value>,
    submodule_recursive: Option<bool>,
    submodule_remote: Option<bool>,
    disable_git_lfs: Option<bool>,
    clean_tags: Option<bool>,
    short_ref_format: Option<String>,
    timestamp_format: Option<String>,
    describe_ref_options: Option<String>,
    all_branches: Option<bool>,
    debug: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
struct PutParams {
    repository: Option<String>,
    rebase: Option<bool>,
    merge: Option<bool>,
    returning: Option<String>,
    tag: Option<String>,
    only_tag: Option<bool>,
    tag_prefix: Option<String>,
    force: Option<bool>,
    annotate: Option<String>,
    notes: Option<String>,
    branch: Option<String>,
    refs_prefix: Option<String>,
    push_options: Option<Vec<String>>,
    debug: Option<bool>,
    #[serde(flatten)]
    unsupported: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct Request<P> {
    source: Option<Source>,
    version: Option<BTreeMap<String, Value>>,
    params: Option<P>,
}

/// Why a git command failed, worded as concourse/git-resource words it
/// where it has the case.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("usage: in|out <directory>")]
    NoDirectory,
    /// `what` is the part of the request read with it: source, get or put params.
    #[error("invalid {what} or request: {source}")]
    InvalidRequest {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("Found unknown keys in {what}: {key}")]
    UnknownKey { what: &'static str, key: String },
    /// An upstream key this implementation does not do.
    #[error(
        "{what} '{key}' is not supported by atc's built-in git resource type; \
         install concourse/git-resource's scripts as --resource-types-dir type 'git' to use it"
    )]
    Unsupported { what: &'static str, key: String },
    #[error("source 'tag_behaviour: match_tag_ancestors' is not supported by atc's built-in git resource type")]
    TagAncestorsUnsupported,
    #[error("Invalid tag_behaviour. Must be one of 'match_tagged' or 'match_tag_ancestors'.")]
    InvalidTagBehaviour,
    #[error("Invalid version_depth. Must be greater than 0.")]
    ZeroVersionDepth,
    #[error("source.uri is required and must not be empty")]
    MissingUri,
    #[error("Cannot provide both tag_filter and tag_regex")]
    TagFilterAndRegex,
    #[error("tag_regex '{pattern}' is not a valid regular expression: {source}")]
    InvalidTagRegex {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("invalid payload (missing branch)")]
    MissingBranch,
    #[error("invalid payload (missing repository)")]
    MissingRepository,
    #[error("invalid push strategy (either merge or rebase can be set, but not both)")]
    RebaseAndMerge,
    #[error("tag file '{file}' does not exist")]
    MissingTagFile {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("annotation file '{0}' does not exist")]
    MissingAnnotationFile(String),
    #[error(transparent)]
    PathLeavesBase(#[from] PathLeavesBase),
    #[error("cannot create a scratch directory: {0}")]
    CreateScratch(#[source] io::Error),
    /// `name` is the scratch file's name, not where scratch space is.
    #[error("cannot write {name}: {source}")]
    WriteScratchFile {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot create the destination directory: {0}")]
    CreateDestination(#[source] io::Error),
    #[error("cannot write .git/{name}: {source}")]
    WriteGitFile {
        name: &'static str,
        #[source]
        source: io::Error,
    },
    /// `git` itself could not be started or waited for.
    #[error("cannot run git: {0}")]
    Spawn(#[source] io::Error),
    /// `git` ran and exited non-zero; its stderr went to the log.
    #[error("git {args} failed ({status})")]
    Failed { args: String, status: ExitStatus },
    #[error("the push was rejected (the branch moved; set rebase or merge to retry)")]
    PushRejected,
    #[error("the push was still rejected after {MAX_PUSH_ATTEMPTS} attempts")]
    PushStillRejected,
    /// A push failed for another reason than the branch having moved.
    #[error("failed with non-rebase error")]
    PushFailed,
}

pub fn run(command: Command, dir: Option<&Path>, request: &[u8], log: &mut dyn Write) -> Result<Value, GitError> {
    let scratch = Scratch::create()?;
    match (command, dir) {
        (Command::Check, _) => {
            let request: Request<Value> = decode(request, "source")?;
            let source = request.source.unwrap_or_default();
            let git = Git::new(&source, &scratch, false)?;
            check(&git, &source, version_ref(&request.version), &scratch)
        }
        (Command::In, Some(dest)) => {
            let request: Request<GetParams> = decode(request, "get params")?;
            let source = request.source.unwrap_or_default();
            let params = request.params.unwrap_or_default();
            let git = Git::new(&source, &scratch, params.debug == Some(true))?;
            let branch_override = request.version.as_ref().and_then(|v| v.get("branch")).and_then(Value::as_str);
            get(&git, &source, &params, version_ref(&request.version), branch_override, dest, log)
        }
        (Command::Out, Some(src)) => {
            let request: Request<PutParams> = decode(request, "put params")?;
            let source = request.source.unwrap_or_default();
            let params = request.params.unwrap_or_default();
            refuse_unsupported("put params", &params.unsupported, UNSUPPORTED_PARAM_KEYS)?;
            let git = Git::new(&source, &scratch, params.debug == Some(true))?;
            put(&git, &source, &params, src, log)
        }
        (_, None) => Err(GitError::NoDirectory),
    }
}

fn decode<T: serde::de::DeserializeOwned>(request: &[u8], what: &'static str) -> Result<T, GitError> {
    serde_json::from_slice(request).map_err(|source| GitError::InvalidRequest { what, source })
}

fn version_ref(version: &Option<BTreeMap<String, Value>>) -> Option<String> {
    version.as_ref()?.get("ref")?.as_str().filter(|r| !r.is_empty()).map(str::to_string)
}

fn refuse_unsupported(what: &'static str, given: &BTreeMap<String, Value>, known: &[&str]) -> Result<(), GitError> {
    for (key, value) in given {
        if !known.contains(&key.as_str()) {
            return Err(GitError::UnknownKey { what, key: key.clone() });
        }
        let unset = matches!(value, Value::Null | Value::Bool(false))
            || value.as_str().is_some_and(str::is_empty)
            || value.as_array().is_some_and(Vec::is_empty);
        if !unset {
            return Err(GitError::Unsupported { what, key: key.clone() });
        }
    }
    Ok(())
}

/// A private temporary directory for keys and the check's clone, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn create() -> Result<Scratch, GitError> {
        let path = std::env::temp_dir().join(format!("atc-git-{}-{}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&path).map_err(GitError::CreateScratch)?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700));
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `git` with the source's credentials and configuration. Its stderr
/// (progress, errors) goes straight to the step's log.
struct Git {
    env: Vec<(String, String)>,
}

impl Git {
    fn new(source: &Source, scratch: &Scratch, debug: bool) -> Result<Git, GitError> {
        refuse_unsupported("source", &source.unsupported, UNSUPPORTED_SOURCE_KEYS)?;
        let mut env = vec![("GIT_TERMINAL_PROMPT".to_string(), "0".to_string())];
        let mut set = |key: &str, value: String| env.push((key.to_string(), value));
        if let Some(key) = source.private_key.as_deref().filter(|k| !k.trim().is_empty()) {
            let path = scratch.0.join("private-key");
            write_private(&path, &format!("{}\n", key.trim_end()))?;
            set(
                "GIT_SSH_COMMAND",
                format!(
                    "ssh -i '{}' -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o LogLevel=quiet",
                    path.display()
                ),
            );
        }
        if let (Some(username), Some(password)) = (&source.username, &source.password) {
            let askpass = scratch.0.join("askpass.sh");
            write_private(
                &askpass,
                "#!/bin/sh\ncase \"$1\" in\n  Username*) printf '%s\\n' \"$ATC_GIT_USERNAME\" ;;\n  *) printf '%s\\n' \"$ATC_GIT_PASSWORD\" ;;\nesac\n",
            )?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700));
            set("GIT_ASKPASS", askpass.to_string_lossy().into_owned());
            set("ATC_GIT_USERNAME", username.clone());
            set("ATC_GIT_PASSWORD", password.clone());
        }
        if source.skip_ssl_verification == Some(true) {
            set("GIT_SSL_NO_VERIFY", "true".into());
        }
        if source.debug == Some(true) || debug {
            set("GIT_TRACE", "1".into());
        }
        let config = source.git_config.clone().unwrap_or_default();
        set("GIT_CONFIG_COUNT", config.len().to_string());
        for (index, pair) in config.iter().enumerate() {
            set(&format!("GIT_CONFIG_KEY_{index}"), pair.name.clone());
            set(&format!("GIT_CONFIG_VALUE_{index}"), config_value(&pair.value));
        }
        Ok(Git { env })
    }

    fn command(&self, dir: &Path, args: &[&str]) -> Process {
        let mut command = Process::new("git");
        command.args(args).current_dir(dir).envs(self.env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null());
        command
    }

    /// Runs git and returns its stdout; a non-zero exit is an error.
    fn run(&self, dir: &Path, args: &[&str]) -> Result<String, GitError> {
        self.run_with_input(dir, args, None)
    }

    fn run_with_input(&self, dir: &Path, args: &[&str], input: Option<&str>) -> Result<String, GitError> {
        let mut command = self.command(dir, args);
        command.stdout(Stdio::piped()).stderr(Stdio::inherit());
        if input.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().map_err(GitError::Spawn)?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            let input = input.to_string();
            std::thread::spawn(move || {
                let _ = stdin.write_all(input.as_bytes());
            });
        }
        let output = child.wait_with_output().map_err(GitError::Spawn)?;
        if !output.status.success() {
            return Err(GitError::Failed { args: args.join(" "), status: output.status });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Whether git succeeds, quietly.
    fn succeeds(&self, dir: &Path, args: &[&str]) -> bool {
        self.command(dir, args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    }
}

fn config_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Writes a scratch file; errors name the file, not where scratch space is.
fn write_private(path: &Path, content: &str) -> Result<(), GitError> {
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |source| GitError::WriteScratchFile {
        name: path.file_name().unwrap_or_default().to_string_lossy().into_owned(),
        source,
    };
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(failed)?;
    file.write_all(content.as_bytes()).map_err(failed)
}

fn required_uri(source: &Source) -> Result<&str, GitError> {
    source.uri.as_deref().map(str::trim).filter(|uri| !uri.is_empty()).ok_or(GitError::MissingUri)
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|line| !line.is_empty()).map(str::to_string).collect()
}

fn check(git: &Git, source: &Source, from: Option<String>, scratch: &Scratch) -> Result<Value, GitError> {
    let uri = required_uri(source)?;
    let branch = non_empty(&source.branch);
    let tag_filter = non_empty(&source.tag_filter);
    let tag_regex = non_empty(&source.tag_regex);
    if tag_filter.is_some() && tag_regex.is_some() {
        return Err(GitError::TagFilterAndRegex);
    }
    match source.tag_behaviour.as_deref() {
        None | Some("") | Some("match_tagged") => {}
        Some("match_tag_ancestors") => return Err(GitError::TagAncestorsUnsupported),
        Some(_) => return Err(GitError::InvalidTagBehaviour),
    }
    let depth = source.version_depth.unwrap_or(1);
    if depth == 0 {
        return Err(GitError::ZeroVersionDepth);
    }
    let by_tag = tag_filter.is_some() || tag_regex.is_some();

    let repo = scratch.0.join("repo");
    let repo_arg = repo.to_string_lossy().into_owned();
    let mut clone = vec!["clone", "--bare", "--progress"];
    if !by_tag {
        clone.push("--single-branch");
    }
    clone.push(uri);
    if let Some(branch) = branch {
        clone.extend(["--branch", branch]);
    }
    clone.push(&repo_arg);
    clone.push(if by_tag { "--tags" } else { "--no-tags" });
    git.run(&scratch.0, &clone)?;

    // From the given commit on, when the repository still has it.
    let from = from.filter(|reference| git.succeeds(&repo, &["cat-file", "-e", reference]));
    let mut list = vec!["rev-list".to_string(), "--all".into(), "--first-parent".into()];
    if let Some(reference) = &from {
        let roots = lines(&git.run(&repo, &["rev-list", "--max-parents=0", "HEAD"])?);
        let commit = git.run(&repo, &["rev-parse", &format!("{reference}^{{commit}}")])?.trim().to_string();
        if roots.contains(&commit) {
            list.push("HEAD".into());
        } else {
            list.push(format!("{reference}~1..HEAD"));
        }
    }
    let paths = source.paths.clone().unwrap_or_default();
    let ignore_paths = source.ignore_paths.clone().unwrap_or_default();
    if !paths.is_empty() || !ignore_paths.is_empty() {
        list.push("--".into());
        if paths.is_empty() {
            list.push(".".into());
        }
        list.extend(paths);
        list.extend(ignore_paths.iter().map(|path| format!(":!{path}")));
    }
    let list_args: Vec<&str> = list.iter().map(String::as_str).collect();
    let mut commits = lines(&git.run(&repo, &list_args)?);

    let filter = source.commit_filter.as_ref();
    if let Some(filter) = filter.filter(|f| !f.include.is_empty()) {
        commits = grep_commits(git, &repo, commits, &filter.include, filter.include_all_match, false)?;
    }
    if let Some(filter) = filter.filter(|f| !f.exclude.is_empty()) {
        commits = grep_commits(git, &repo, commits, &filter.exclude, filter.exclude_all_match, true)?;
    }
    if source.disable_ci_skip != Some(true) {
        let patterns: Vec<String> = SKIP_CI_PATTERNS.iter().map(|p| p.to_string()).collect();
        commits = grep_commits(git, &repo, commits, &patterns, false, true)?;
    }

    if by_tag {
        return tagged_versions(git, &repo, &commits, tag_filter, tag_regex, from.as_deref(), branch, depth);
    }
    // rev-list lists newest first; versions go oldest first.
    if from.is_none() {
        commits.truncate(depth as usize);
    }
    commits.reverse();
    Ok(Value::Array(commits.into_iter().map(|commit| json!({ "ref": commit })).collect()))
}

/// Keeps the commits whose message matches (or, inverted, does not match)
/// the patterns, in their order.
fn grep_commits(
    git: &Git,
    repo: &Path,
    commits: Vec<String>,
    patterns: &[String],
    all_match: bool,
    invert: bool,
) -> Result<Vec<String>, GitError> {
    if commits.is_empty() {
        return Ok(commits);
    }
    let mut args = vec!["rev-list".to_string(), "--stdin".into(), "--no-walk=unsorted".into()];
    args.extend(patterns.iter().map(|pattern| format!("--grep={pattern}")));
    if all_match {
        args.push("--all-match".into());
    }
    if invert {
        args.push("--invert-grep".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let input = format!("{}\n", commits.join("\n"));
    Ok(lines(&git.run_with_input(repo, &args, Some(&input))?))
}

#[allow(clippy::too_many_arguments)]
fn tagged_versions(
    git: &Git,
    repo: &Path,
    commits: &[String],
    tag_filter: Option<&str>,
    tag_regex: Option<&str>,
    from: Option<&str>,
    branch: Option<&str>,
    depth: u64,
) -> Result<Value, GitError> {
    let mut args = vec!["tag", "--sort=creatordate"];
    if let (Some(from), Some(branch)) = (from, branch) {
        args.extend(["--contains", from, "--merged", branch]);
    } else if let (None, Some(branch)) = (from, branch) {
        args.extend(["--merged", branch]);
    }
    if let Some(pattern) = tag_filter {
        args.extend(["--list", pattern]);
    }
    let mut tags = lines(&git.run(repo, &args)?);
    if let Some(pattern) = tag_regex {
        let regex = regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|source| GitError::InvalidTagRegex { pattern: pattern.to_string(), source })?;
        tags.retain(|tag| regex.is_match(tag));
    }
    if let (Some(from), None) = (from, branch) {
        // Tags from the given one on, in creation order.
        if let Some(position) = tags.iter().position(|tag| tag == from) {
            tags.drain(..position);
        }
    }
    let mut versions = Vec::new();
    for tag in tags {
        let commit = git.run(repo, &["rev-list", "-n", "1", &tag])?.trim().to_string();
        if commits.contains(&commit) {
            versions.push(json!({ "ref": tag, "commit": commit }));
        }
    }
    let keep_from = versions.len().saturating_sub(depth as usize);
    Ok(Value::Array(versions.split_off(keep_from)))
}

fn get(
    git: &Git,
    source: &Source,
    params: &GetParams,
    reference: Option<String>,
    branch_override: Option<&str>,
    dest: &Path,
    log: &mut dyn Write,
) -> Result<Value, GitError> {
    let uri = required_uri(source)?;
    let reference = reference.unwrap_or_else(|| "HEAD".to_string());
    let branch = branch_override.filter(|b| !b.is_empty()).or(non_empty(&source.branch));
    let depth = params.depth.unwrap_or(0);
    let fetch_tags = params.fetch_tags.or(source.fetch_tags);
    let tag_flag = match fetch_tags {
        Some(false) => Some("--no-tags"),
        _ if fetch_tags == Some(true)
            || non_empty(&source.tag_filter).is_some()
            || non_empty(&source.tag_regex).is_some() =>
        {
            Some("--tags")
        }
        _ => None,
    };
    std::fs::create_dir_all(dest).map_err(GitError::CreateDestination)?;
    let dest_arg = dest.to_string_lossy().into_owned();
    let depth_arg = depth.to_string();
    let mut clone = vec!["clone", "--progress"];
    if params.all_branches != Some(true) {
        clone.push("--single-branch");
    }
    if depth > 0 {
        clone.extend(["--depth", &depth_arg]);
    }
    clone.push(uri);
    if let Some(branch) = branch {
        clone.extend(["--branch", branch]);
    }
    clone.push(&dest_arg);
    clone.extend(tag_flag);
    let git_env_skip_lfs;
    let git = if params.disable_git_lfs == Some(true) {
        let mut env = git.env.clone();
        env.push(("GIT_LFS_SKIP_SMUDGE".into(), "1".into()));
        git_env_skip_lfs = Git { env };
        &git_env_skip_lfs
    } else {
        git
    };
    git.run(dest.parent().unwrap_or(dest), &clone)?;

    for pair in source.git_config.iter().flatten() {
        git.run(dest, &["config", &pair.name, &config_value(&pair.value)])?;
    }
    let mut notes = vec!["fetch", "origin", "refs/notes/*:refs/notes/*"];
    notes.extend(tag_flag);
    git.run(dest, &notes)?;

    if depth > 0 {
        deepen_until_found(git, dest, depth, &reference, tag_flag, log)?;
    } else {
        git.run(dest, &["checkout", "-f", "-q", &reference])?;
    }
    let summary = git.run(dest, &["log", "-1", "--oneline"])?;
    let _ = write!(log, "{summary}");
    git.run(dest, &["clean", "--force", "--force", "-d"])?;
    update_submodules(git, dest, params, depth)?;

    for extra in params.fetch.iter().flatten() {
        git.run(dest, &["fetch", "origin", extra])?;
        if !git.succeeds(dest, &["show-ref", "--verify", "--quiet", &format!("refs/heads/{extra}")]) {
            git.run(dest, &["branch", extra, "FETCH_HEAD"])?;
        }
    }

    let return_ref =
        if reference == "HEAD" { git.run(dest, &["rev-parse", "HEAD"])?.trim().to_string() } else { reference };
    let metadata = commit_metadata(git, dest)?;
    write_git_files(git, dest, params, &return_ref, &metadata)?;
    if params.clean_tags == Some(true) {
        for tag in lines(&git.run(dest, &["tag"])?) {
            git.run(dest, &["tag", "-d", &tag])?;
        }
    }
    Ok(json!({ "version": { "ref": return_ref }, "metadata": metadata }))
}

/// A shallow clone may not reach back to the wanted commit (newer commits
/// were pushed since): deepen it, doubling, then give up and unshallow.
fn deepen_until_found(
    git: &Git,
    dest: &Path,
    depth: u64,
    reference: &str,
    tag_flag: Option<&str>,
    log: &mut dyn Write,
) -> Result<(), GitError> {
    let mut step = depth;
    let mut total = depth;
    let wanted = format!("{reference}~{}", depth - 1);
    while !git.succeeds(dest, &["checkout", "-f", "-q", &wanted]) {
        if !dest.join(".git/shallow").exists() {
            let _ = writeln!(
                log,
                "Reached max depth of the origin repo while deepening the shallow clone, it's a deep clone now"
            );
            break;
        }
        let _ = writeln!(log, "Could not find ref {wanted} in a shallow clone of depth {total}");
        step *= 2;
        if total >= MAX_SHALLOW_DEPTH {
            let _ = writeln!(log, "Reached depth threshold {MAX_SHALLOW_DEPTH}, falling back to deep clone...");
            let mut unshallow = vec!["fetch", "--unshallow", "origin"];
            unshallow.extend(tag_flag);
            git.run(dest, &unshallow)?;
            break;
        }
        let _ = writeln!(log, "Deepening the shallow clone by an additional {step}...");
        let step_arg = step.to_string();
        let mut deepen = vec!["fetch", "--deepen", &step_arg, "origin"];
        deepen.extend(tag_flag);
        git.run(dest, &deepen)?;
        total += step;
    }
    git.run(dest, &["checkout", "-f", "-q", reference]).map(|_| ())
}

fn update_submodules(git: &Git, dest: &Path, params: &GetParams, depth: u64) -> Result<(), GitError> {
    if !dest.join(".gitmodules").exists() {
        return Ok(());
    }
    git.run(dest, &["submodule", "sync"])?;
    let only: Option<Vec<String>> = match &params.submodules {
        Some(Value::String(mode)) if mode == "none" => return Ok(()),
        Some(Value::Array(paths)) => Some(paths.iter().filter_map(Value::as_str).map(str::to_string).collect()),
        _ => None,
    };
    let depth_arg = depth.to_string();
    let mut args = vec!["submodule", "update", "--init"];
    if params.submodule_recursive != Some(false) {
        args.push("--recursive");
    }
    if params.submodule_remote == Some(true) {
        args.push("--remote");
    }
    if depth > 0 {
        args.extend(["--depth", &depth_arg]);
    }
    if let Some(paths) = &only {
        args.push("--");
        args.extend(paths.iter().map(String::as_str));
    }
    git.run(dest, &args).map(|_| ())
}

fn log_field(git: &Git, dir: &Path, format: &str) -> Result<String, GitError> {
    git.run(dir, &["log", "-1", &format!("--format=format:{format}")])
}

/// Upstream's metadata: commit, author, dates, branch, tags, message, url.
fn commit_metadata(git: &Git, dir: &Path) -> Result<Vec<Value>, GitError> {
    let commit = git.run(dir, &["rev-parse", "HEAD"])?.trim().to_string();
    let author = log_field(git, dir, "%an")?;
    let author_date = log_field(git, dir, "%ai")?;
    let mut metadata = vec![
        json!({"name": "commit", "value": commit}),
        json!({"name": "author", "value": author}),
        json!({"name": "author_date", "value": author_date}),
    ];
    let committer = log_field(git, dir, "%cn")?;
    let committer_date = log_field(git, dir, "%ci")?;
    if author == committer && author_date == committer_date {
        metadata.push(json!({"name": "committer", "value": committer}));
        metadata.push(json!({"name": "committer_date", "value": committer_date}));
    }
    let branches: Vec<String> = lines(&git.run(dir, &["show-ref", "--heads"]).unwrap_or_default())
        .into_iter()
        .filter_map(|line| line.strip_prefix(&format!("{commit} refs/heads/")).map(str::to_string))
        .collect();
    if !branches.is_empty() {
        metadata.push(json!({"name": "branch", "value": branches.join(",")}));
    }
    let tags = lines(&git.run(dir, &["tag", "--points-at", "HEAD"])?);
    if !tags.is_empty() {
        metadata.push(json!({"name": "tags", "value": tags.join(",")}));
    }
    let message: String = log_field(git, dir, "%B")?.chars().take(10_240).collect();
    metadata.push(json!({"name": "message", "value": message}));
    if let Some(url) = commit_url(&git.run(dir, &["remote", "get-url", "origin"]).unwrap_or_default(), &commit) {
        metadata.push(json!({"name": "url", "value": url}));
    }
    Ok(metadata)
}

/// The web page of a commit on the common hosts, as upstream guesses it.
fn commit_url(origin: &str, commit: &str) -> Option<String> {
    let origin = origin.trim();
    let (scp_style, rest) = if let Some(rest) = origin.strip_prefix("git@") {
        (true, rest)
    } else {
        let rest = ["https://", "http://", "ssh://git@"].iter().find_map(|prefix| origin.strip_prefix(prefix))?;
        (false, rest)
    };
    let (mut host, mut path) = rest.split_once('/').map(|(h, p)| (h.to_string(), p.to_string()))?;
    if scp_style && let Some((name, owner)) = host.clone().split_once(':') {
        path = format!("{owner}/{path}");
        host = name.to_string();
    }
    let path = path.trim_end_matches(".git");
    if host.contains("github") || host.contains("gogs") {
        Some(format!("https://{host}/{path}/commit/{commit}"))
    } else if host.contains("gitlab") {
        Some(format!("https://{host}/{path}/-/commit/{commit}"))
    } else if host.contains("bitbucket") {
        Some(format!("https://{host}/{path}/commits/{commit}"))
    } else {
        None
    }
}

fn metadata_value(metadata: &[Value], name: &str) -> String {
    metadata
        .iter()
        .find(|field| field["name"] == name)
        .and_then(|field| field["value"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// `.git/ref`, `.git/short_ref`, `.git/commit`, ... as upstream writes them.
fn write_git_files(
    git: &Git,
    dest: &Path,
    params: &GetParams,
    return_ref: &str,
    metadata: &[Value],
) -> Result<(), GitError> {
    let short: String = return_ref.chars().take(7).collect();
    let short_ref = params.short_ref_format.as_deref().unwrap_or("%s").replacen("%s", &short, 1);
    let timestamp_format = params.timestamp_format.as_deref().unwrap_or("iso8601");
    let describe_options = params.describe_ref_options.as_deref().unwrap_or("--always --dirty --broken");
    let mut describe = vec!["describe"];
    describe.extend(describe_options.split_whitespace());
    let files = [
        ("committer", log_field(git, dest, "%ae")?),
        ("committer_name", log_field(git, dest, "%an")?),
        ("ref", format!("{return_ref}\n")),
        ("metadata.json", format!("{}\n", Value::Array(metadata.to_vec()))),
        ("short_ref", short_ref),
        ("commit", format!("{}\n", metadata_value(metadata, "commit"))),
        ("author", format!("{}\n", metadata_value(metadata, "author"))),
        ("author_date", format!("{}\n", metadata_value(metadata, "author_date"))),
        ("branch", format!("{}\n", metadata_value(metadata, "branch"))),
        ("tags", format!("{}\n", metadata_value(metadata, "tags"))),
        ("url", format!("{}\n", metadata_value(metadata, "url"))),
        ("committer_date", format!("{}\n", metadata_value(metadata, "committer_date"))),
        ("commit_message", log_field(git, dest, "%B")?),
        ("commit_timestamp", git.run(dest, &["log", "-1", "--format=%cd", &format!("--date={timestamp_format}")])?),
        ("describe_ref", git.run(dest, &describe).unwrap_or_default()),
    ];
    for (name, content) in files {
        let path = dest.join(".git").join(name);
        std::fs::write(&path, content).map_err(|source| GitError::WriteGitFile { name, source })?;
    }
    Ok(())
}

fn put(git: &Git, source: &Source, params: &PutParams, src: &Path, log: &mut dyn Write) -> Result<Value, GitError> {
    let uri = required_uri(source)?;
    let only_tag = params.only_tag == Some(true);
    let branch = non_empty(&params.branch).or(non_empty(&source.branch));
    if branch.is_none() && !only_tag {
        return Err(GitError::MissingBranch);
    }
    let repository = non_empty(&params.repository).ok_or(GitError::MissingRepository)?;
    let (rebase, merge) = (params.rebase == Some(true), params.merge == Some(true));
    if rebase && merge {
        return Err(GitError::RebaseAndMerge);
    }
    let tag_name = match non_empty(&params.tag) {
        Some(tag_file) => {
            let path = safe_join(src, tag_file)?;
            let name = std::fs::read_to_string(&path)
                .map_err(|source| GitError::MissingTagFile { file: tag_file.to_string(), source })?;
            Some(format!("{}{}", params.tag_prefix.as_deref().unwrap_or(""), name.trim_end_matches(['\n', '\r'])))
        }
        None => None,
    };
    let annotation = match non_empty(&params.annotate) {
        Some(file) => {
            let path = safe_join(src, file)?;
            if !path.is_file() {
                return Err(GitError::MissingAnnotationFile(file.to_string()));
            }
            Some(path)
        }
        None => None,
    };
    let notes = match non_empty(&params.notes) {
        Some(file) => Some(safe_join(src, file)?),
        None => None,
    };
    let repo = safe_join(src, repository)?;
    let refs_prefix = params.refs_prefix.as_deref().unwrap_or("refs/heads");
    let mut push_flags: Vec<String> = Vec::new();
    if params.force == Some(true) {
        push_flags.push("--force".into());
    }
    for option in params.push_options.iter().flatten() {
        push_flags.extend(["--push-option".to_string(), option.clone()]);
    }

    let tag = || -> Result<(), GitError> {
        if let Some(name) = &tag_name {
            let mut args = vec!["tag".to_string(), "-f".into(), name.clone()];
            if let Some(annotation) = &annotation {
                args.extend(["-a".into(), "-F".into(), annotation.to_string_lossy().into_owned()]);
            }
            git.run(&repo, &args.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        Ok(())
    };
    let commit_to_push = git.run(&repo, &["rev-parse", "HEAD"])?.trim().to_string();

    if only_tag {
        tag()?;
        let mut args = vec!["push", "--tags", uri];
        args.extend(push_flags.iter().map(String::as_str));
        git.run(&repo, &args)?;
    } else {
        let branch = branch.unwrap_or_default();
        let destination = format!("HEAD:{refs_prefix}/{branch}");
        let mut push = vec!["push", "--tags", uri, &destination];
        push.extend(push_flags.iter().map(String::as_str));
        let push_all = |log: &mut dyn Write| -> Result<PushResult, GitError> {
            tag()?;
            let result = push_reporting_rejection(git, &repo, &push, log)?;
            if result == PushResult::Pushed
                && let Some(notes) = &notes
            {
                git.run(&repo, &["notes", "add", "-f", "-F", &notes.to_string_lossy()])?;
                git.run(&repo, &["push", uri, "refs/notes/*"])?;
            }
            Ok(result)
        };
        if rebase || merge {
            let mut attempts = 0;
            loop {
                attempts += 1;
                if merge {
                    let _ = writeln!(log, "merging...");
                    git.run(&repo, &["reset", "--hard", &commit_to_push])?;
                    git.run(&repo, &["pull", "--no-edit", uri, branch])?;
                } else {
                    let _ = writeln!(log, "rebasing...");
                    git.run(&repo, &["pull", "--rebase=merges", uri, branch])?;
                }
                match push_all(log)? {
                    PushResult::Pushed => break,
                    PushResult::Rejected if attempts < MAX_PUSH_ATTEMPTS => {
                        let _ = writeln!(log, "the branch moved; trying again...");
                    }
                    PushResult::Rejected => {
                        return Err(GitError::PushStillRejected);
                    }
                }
            }
        } else if push_all(log)? == PushResult::Rejected {
            return Err(GitError::PushRejected);
        }
    }

    let version_ref = if merge && params.returning.as_deref() == Some("unmerged") {
        commit_to_push
    } else {
        git.run(&repo, &["rev-parse", "HEAD"])?.trim().to_string()
    };
    let metadata = commit_metadata(git, &repo)?;
    let version = match non_empty(&params.branch) {
        Some(branch) => json!({ "branch": branch, "ref": version_ref }),
        None => json!({ "ref": version_ref }),
    };
    Ok(json!({ "version": version, "metadata": metadata }))
}

#[derive(Debug, PartialEq, Eq)]
enum PushResult {
    Pushed,
    Rejected,
}

/// Pushes; a non-fast-forward rejection is a result, any other failure an error.
fn push_reporting_rejection(
    git: &Git,
    repo: &Path,
    args: &[&str],
    log: &mut dyn Write,
) -> Result<PushResult, GitError> {
    let output =
        git.command(repo, args).stdout(Stdio::piped()).stderr(Stdio::piped()).output().map_err(GitError::Spawn)?;
    let _ = log.write_all(&output.stdout);
    let _ = log.write_all(&output.stderr);
    if output.status.success() {
        let _ = writeln!(log, "pushed");
        return Ok(PushResult::Pushed);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let rejected = stderr.contains("[rejected]")
        || stderr.lines().any(|line| line.contains("[remote rejected]") && line.contains("cannot lock ref"));
    if rejected { Ok(PushResult::Rejected) } else { Err(GitError::PushFailed) }
}
