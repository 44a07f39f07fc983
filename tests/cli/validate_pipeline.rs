//! `atc validate-pipeline` against Concourse's own acceptance pipelines
//! and against our broken and questionable ones, each of which names in
//! its first line what the command must report.

use std::path::{Path, PathBuf};

use crate::atc;

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let dir = crate::support::source_root().join("tests/fixtures/pipelines").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures under {}", dir.display());
    files
}

/// The text after `# expect: ` or `# warn: ` on the fixture's first line.
fn expectation(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let first = text.lines().next().unwrap_or_default();
    let (_, expected) = first
        .split_once(": ")
        .unwrap_or_else(|| panic!("{} must start with '# expect: ...' or '# warn: ...'", path.display()));
    expected.to_string()
}

fn validate(path: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["validate-pipeline", "-c", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let output = atc(&args);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// Upstream fixtures that are not pipelines on their own, with what they
/// need or why they are refused.
fn upstream_exception(name: &str) -> Option<(&'static [&'static str], &'static str)> {
    match name {
        // Task configs that testflight runs with `fly execute`, not pipelines.
        "clearlinux.yml" | "http-proxy-task.yml" => Some((&[], "unknown field `image_resource`")),
        // atc cannot run idtoken var sources yet, so it does not accept them.
        "idtoken.yml" => Some((&[], "unknown credential manager type: 'idtoken' (var_sources.defaultidtoken)")),
        // Whole values from vars: refused until the vars are given.
        "pinned-resource-simple-trigger.yml" => Some((
            &["-y", "pinned_resource_version={version: v1}", "-y", "version_config=null", "-v", "hash=x"],
            "resources[0].version: invalid type: string \"((pinned_resource_version))\"",
        )),
        "resource-types-privileged.yml" => Some((
            &["-y", "privileged=true", "-v", "unique_config=x"],
            "resource_types[0].privileged: invalid type: string \"((privileged))\"",
        )),
        _ => None,
    }
}

#[test]
fn every_upstream_acceptance_pipeline_gets_concourses_verdict() {
    let files = fixtures("testflight");
    assert!(files.len() >= 70, "expected the whole testflight fixture set, found {}", files.len());
    for path in files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let (ok, output) = validate(&path, &[]);
        match upstream_exception(name) {
            None => {
                assert!(ok, "{name} must be accepted:\n{output}");
                assert!(output.contains("looks good"), "{name}:\n{output}");
            }
            Some((vars, refusal)) => {
                assert!(!ok, "{name} must be refused without vars:\n{output}");
                assert!(output.contains(refusal), "{name} should say {refusal:?}:\n{output}");
                if !vars.is_empty() {
                    let (ok, output) = validate(&path, vars);
                    assert!(ok, "{name} must be accepted with {vars:?}:\n{output}");
                }
            }
        }
    }
}

#[test]
fn broken_pipelines_are_refused_naming_the_problem() {
    for path in fixtures("invalid") {
        let expected = expectation(&path);
        let (ok, output) = validate(&path, &[]);
        assert!(!ok, "{} must be refused:\n{output}", path.display());
        assert!(output.contains(&expected), "{} should report {expected:?}:\n{output}", path.display());
        assert!(!output.contains("looks good"), "{}:\n{output}", path.display());
    }
}

#[test]
fn warnings_pass_unless_strict() {
    for path in fixtures("warnings") {
        let expected = expectation(&path);
        let (ok, output) = validate(&path, &[]);
        assert!(ok, "{} must pass with a warning:\n{output}", path.display());
        assert!(
            output.contains("WARNING") && output.contains(&expected),
            "{} should warn {expected:?}:\n{output}",
            path.display()
        );
        let (strict_ok, strict_output) = validate(&path, &["--strict"]);
        assert!(!strict_ok, "{} must fail under --strict:\n{strict_output}", path.display());
    }
}

#[test]
fn vars_fill_the_pipeline_before_it_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("pipeline.yml");
    std::fs::write(
        &pipeline,
        "jobs:\n- name: ((job))\n  serial: ((serial))\n  plan: [{task: t, config: {platform: linux, run: {path: ((cmd))}}}]\n",
    )
    .unwrap();
    let vars = dir.path().join("vars.yml");
    std::fs::write(&vars, "cmd: echo\n").unwrap();
    let path = pipeline.to_str().unwrap();
    let vars_path = vars.to_str().unwrap();

    let filled = atc(&["validate-pipeline", "-c", path, "-v", "job=build", "-y", "serial=true", "-l", vars_path]);
    assert!(filled.status.success(), "{}", String::from_utf8_lossy(&filled.stderr));

    // Without `-y serial=true` the string "((serial))" is not a boolean.
    let unfilled = atc(&["validate-pipeline", "-c", path, "-v", "job=build", "-l", vars_path]);
    assert!(!unfilled.status.success());
    assert!(String::from_utf8_lossy(&unfilled.stderr).contains("jobs[0].serial"));

    let bad_var = atc(&["validate-pipeline", "-c", path, "-v", "job"]);
    assert!(!bad_var.status.success());
    assert!(String::from_utf8_lossy(&bad_var.stderr).contains("-v"));
}
