//! The deployment files against the binary they deploy: every flag and
//! CONCOURSE_* variable the Helm chart can render or its values document
//! is one `atc web --help` lists, spelled as atc spells it, and the
//! Dockerfile builds atc with the command CI runs. (Rendering the chart and
//! installing it is tests/cluster/helm.rs, on the test control plane.)

use std::collections::BTreeSet;

use regex::Regex;

use super::{ATC, support};

/// The long flags and variables `atc web --help` lists.
fn web_help() -> (BTreeSet<String>, BTreeSet<String>) {
    let output = std::process::Command::new(ATC).args(["web", "--help"]).output().unwrap();
    assert!(output.status.success(), "atc web --help: {output:?}");
    let help = String::from_utf8(output.stdout).unwrap();
    let flags = Regex::new(r"(?m)^\s+(?:-\w, )?--([a-z0-9-]+)").unwrap();
    let envs = Regex::new(r"\[env: (CONCOURSE_[A-Z0-9_]+)").unwrap();
    (
        flags.captures_iter(&help).map(|c| c[1].to_string()).collect(),
        envs.captures_iter(&help).map(|c| c[1].to_string()).collect(),
    )
}

/// Names found in a file, each with where it was (`file:line`).
type Mentions = Vec<(String, String)>;

/// Where each `--flag` and CONCOURSE_ variable appears in `text`.
fn mentions(text: &str, file: &str) -> (Mentions, Mentions) {
    // A flag starts after a quote, a space, a dash list item or a line start: not inside a word.
    let flag = Regex::new(r#"(?:^|[\s"'(\[`])--([a-z][a-z0-9-]*)"#).unwrap();
    let env = Regex::new(r"\bCONCOURSE_[A-Z0-9_]+\b").unwrap();
    let mut flags = Vec::new();
    let mut envs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let at = format!("{file}:{}", number + 1);
        flags.extend(flag.captures_iter(line).map(|c| (c[1].to_string(), at.clone())));
        envs.extend(env.find_iter(line).map(|m| (m.as_str().to_string(), at.clone())));
    }
    (flags, envs)
}

#[test]
fn every_flag_the_chart_renders_or_documents_is_one_atc_web_has() {
    let (known_flags, known_envs) = web_help();
    assert!(known_flags.contains("kubernetes-namespace") && known_envs.contains("CONCOURSE_POSTGRES_PASSWORD"));
    let chart = support::source_root().join("helm/atc");
    // The files that render or describe atc's own container (the cleanup
    // Job runs kubectl and NOTES.txt shows fly and kubectl, whose flags are
    // not atc's).
    let files = ["values.yaml", "values.schema.json", "templates/deployment.yaml", "templates/_helpers.tpl"];
    let mut unknown = Vec::new();
    let mut rendered = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(chart.join(file)).unwrap();
        let (flags, envs) = mentions(&text, file);
        for (flag, at) in flags {
            if !known_flags.contains(&flag) {
                unknown.push(format!("{at}: --{flag}"));
            }
            rendered.insert(flag);
        }
        for (env, at) in envs {
            if !known_envs.contains(&env) {
                unknown.push(format!("{at}: {env}"));
            }
        }
    }
    assert!(unknown.is_empty(), "not flags or variables of `atc web`:\n{}", unknown.join("\n"));
    // The chart reaches the concerns the issue names.
    for flag in [
        "bind-port",
        "postgres-host",
        "kubernetes-namespace",
        "tracing-sampling-rate",
        "prometheus-bind-port",
        "vault-url",
    ] {
        assert!(rendered.contains(flag), "the chart never renders --{flag}");
    }
}

#[test]
fn the_dockerfile_builds_atc_with_the_command_ci_runs() {
    let root = support::source_root();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let builds: Vec<&str> = dockerfile
        .lines()
        .filter_map(|line| line.trim().strip_prefix("RUN "))
        .filter(|run| run.contains("cargo "))
        .collect();
    assert_eq!(builds.len(), 1, "one cargo command in the Dockerfile: {builds:?}");
    let ci = std::fs::read_to_string(root.join("scripts/test.sh")).unwrap();
    assert!(
        ci.lines().any(|line| line.trim() == builds[0]),
        "scripts/test.sh (what CI runs) has no line `{}`: the image would be built in a way CI never tries",
        builds[0]
    );
    // The image runs atc as the chart expects.
    for line in
        ["ENTRYPOINT [\"atc\"]", "EXPOSE 8080 9391", "COPY --from=build /src/target/release/atc /usr/local/bin/atc"]
    {
        assert!(dockerfile.lines().any(|l| l.trim() == line), "the Dockerfile lacks `{line}`");
    }
    let user = dockerfile.lines().find_map(|l| l.trim().strip_prefix("USER ")).expect("a USER line");
    assert!(!user.starts_with("root") && !user.starts_with('0'), "the image runs as root: USER {user}");
}
