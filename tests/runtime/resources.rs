//! The resource protocol through the local runtime: script types from
//! `--resource-types-dir`, every kind of bad response, and the built-in
//! `mock`, `time` and `git` types behaving as their upstream counterparts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use atc::engine::step_process::StepProcess;
use atc::resource::{self, BuildEnv, ResourceError, ResourceRun, Version};
use atc::runtime::{Artifact, ImageSpec, InputMount, OutputMount, Runtime, StepMetadata};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{GRACE, LocalFixture, RecordingSink, new_handle, read, run, shell_step};

fn run_of(image: ImageSpec) -> ResourceRun {
    ResourceRun {
        handle: new_handle(),
        metadata: StepMetadata { team: "main".into(), step_type: "check".into(), ..Default::default() },
        image,
        privileged: false,
        tags: Vec::new(),
        env: BuildEnv {
            build_id: Some(42),
            build_name: Some("7".into()),
            team_name: Some("main".into()),
            job_name: Some("job".into()),
            pipeline_name: Some("pipe".into()),
            pipeline_instance_vars: None,
            external_url: Some("http://ci.example.com".into()),
            created_by: None,
        }
        .vars(),
        trace: None,
    }
}

fn builtin(name: &str) -> ResourceRun {
    run_of(ImageSpec::resource_type(name))
}

/// Runs a script's step as the engine does, its stderr into `sink`.
fn runner<'a>(runtime: &'a dyn Runtime, sink: &Arc<RecordingSink>) -> StepProcess<'a> {
    let mut process = StepProcess::new(runtime, sink.clone(), CancellationToken::new());
    process.grace = GRACE;
    process
}

fn version(pairs: &[(&str, &str)]) -> Version {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn write_executable(path: &Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, script).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `--resource-types-dir` with a well-behaved `echo-type` and a `bad` type
/// whose every command misbehaves as `source.mode` says.
async fn fixture_with_script_types() -> LocalFixture {
    let types_dir = tempfile::tempdir().unwrap();
    let types = types_dir.path().to_path_buf();
    write_executable(
        &types.join("echo-type/check"),
        r#"#!/bin/sh
request=$(cat)
echo "check got: $request" >&2
case "$request" in *'"version":null'*) echo "version must be left out, not null" >&2; exit 9;; esac
case "$request" in
  *'"version"'*) echo '[{"ref":"given"},{"ref":"next"}]' ;;
  *) echo '[{"ref":"first"}]' ;;
esac
"#,
    );
    write_executable(
        &types.join("echo-type/in"),
        r#"#!/bin/sh
request=$(cat)
cd "$1"
echo "$request" > request.json
echo "$BUILD_ID $BUILD_TEAM_NAME $BUILD_URL" > env.txt
echo '{"version":{"ref":"given"},"metadata":[{"name":"fetched","value":"yes"}]}'
"#,
    );
    write_executable(
        &types.join("echo-type/out"),
        r#"#!/bin/sh
request=$(cat)
ref=$(cat "$1/input/ref")
echo "pushing $ref" >&2
echo "{\"version\":{\"ref\":\"$ref\"},\"metadata\":null}"
"#,
    );
    let bad = r#"#!/bin/sh
request=$(cat)
case "$request" in
  *'"mode":"invalid-json"'*) echo 'this is { not json' ;;
  *'"mode":"not-an-array"'*) echo '{"ref":"1"}' ;;
  *'"mode":"not-objects"'*) echo '["1","2"]' ;;
  *'"mode":"number-value"'*) echo '[{"ref":1}]' ;;
  *'"mode":"no-version"'*) echo '{"metadata":[]}' ;;
  *'"mode":"null-version"'*) echo '{"version":null}' ;;
  *'"mode":"nothing"'*) ;;
  *'"mode":"bad-metadata"'*) echo '{"version":{"ref":"1"},"metadata":[{"name":"a","value":3}]}' ;;
  *'"mode":"exit"'*) echo 'partial output'; echo 'it broke' >&2; exit 3 ;;
  *'"mode":"long"'*) i=0; while [ $i -lt 300 ]; do printf 'xxxxxxxxxx'; i=$((i+1)); done ;;
esac
"#;
    for command in ["check", "in", "out"] {
        write_executable(&types.join("bad").join(command), bad);
    }
    write_executable(&types.join("incomplete/check"), "#!/bin/sh\n");
    let mut fixture = LocalFixture::with_types_dir(Some(types)).await;
    fixture.other_dirs.push(types_dir);
    fixture
}

#[tokio::test]
async fn a_script_type_runs_check_in_and_out_end_to_end() {
    let fixture = fixture_with_script_types().await;
    let runtime: &dyn Runtime = &fixture.runtime;
    assert!(runtime.workers().await[0].resource_types.contains(&"echo-type".to_string()));
    assert!(!runtime.workers().await[0].resource_types.contains(&"incomplete".to_string()));
    let image = ImageSpec::resource_type("echo-type");
    let source = json!({"uri": "somewhere"});

    // No previous version: the `version` key is absent (the script exits 9 on null).
    let sink = RecordingSink::new();
    let versions = resource::check(&runner(runtime, &sink), run_of(image.clone()), &source, None).await.unwrap();
    assert_eq!(versions, vec![version(&[("ref", "first")])]);
    assert_eq!(sink.stderr(), "check got: {\"source\":{\"uri\":\"somewhere\"}}\n");

    let sink = RecordingSink::new();
    let from = version(&[("ref", "given")]);
    let versions = resource::check(&runner(runtime, &sink), run_of(image.clone()), &source, Some(&from)).await.unwrap();
    assert_eq!(versions, vec![version(&[("ref", "given")]), version(&[("ref", "next")])]);
    assert!(sink.stderr().contains(r#""version":{"ref":"given"}"#), "{}", sink.stderr());

    let sink = RecordingSink::new();
    let params = json!({"depth": 1});
    let fetched =
        resource::get(&runner(runtime, &sink), run_of(image.clone()), &source, Some(&params), &from).await.unwrap();
    assert_eq!(fetched.result.version, from);
    assert_eq!(fetched.result.metadata, vec![resource::MetadataField { name: "fetched".into(), value: "yes".into() }]);
    let request: Value = serde_json::from_str(&read(runtime, &fetched.artifact, "request.json").await).unwrap();
    assert_eq!(request, json!({"source": source, "params": {"depth": 1}, "version": {"ref": "given"}}));
    assert_eq!(
        read(runtime, &fetched.artifact, "env.txt").await,
        "42 main http://ci.example.com/teams/main/pipelines/pipe/jobs/job/builds/7\n"
    );

    // Empty params are left out, as Concourse leaves them out.
    let sink = RecordingSink::new();
    let input = write_artifact(runtime, "ref", "pushed-ref").await;
    let result = resource::put(
        &runner(runtime, &sink),
        run_of(image),
        &source,
        Some(&json!({})),
        &[("input".to_string(), input)],
    )
    .await
    .unwrap();
    assert_eq!(result.version, version(&[("ref", "pushed-ref")]));
    assert!(result.metadata.is_empty());
    assert_eq!(sink.stderr(), "pushing pushed-ref\n");
}

async fn write_artifact(runtime: &dyn Runtime, file: &str, content: &str) -> Artifact {
    let mut step = shell_step(&format!("printf '{content}' > out/{file}"));
    step.outputs = vec![OutputMount { name: "out".into(), path: "out".into() }];
    let mut outcome = run(runtime, step, RecordingSink::new(), CancellationToken::new()).await.unwrap();
    outcome.outputs.remove("out").unwrap()
}

#[tokio::test]
async fn bad_responses_are_clear_errors_quoting_what_the_script_printed() {
    let fixture = fixture_with_script_types().await;
    let runtime: &dyn Runtime = &fixture.runtime;
    let image = ImageSpec::resource_type("bad");
    let any_version = version(&[("ref", "1")]);
    let check = |mode: &'static str| {
        let image = image.clone();
        async move {
            let sink = RecordingSink::new();
            resource::check(&runner(runtime, &sink), run_of(image), &json!({"mode": mode}), None).await.unwrap_err()
        }
    };
    let get = |mode: &'static str| {
        let (image, any_version) = (image.clone(), any_version.clone());
        async move {
            let sink = RecordingSink::new();
            resource::get(&runner(runtime, &sink), run_of(image), &json!({"mode": mode}), None, &any_version)
                .await
                .unwrap_err()
        }
    };
    let put = |mode: &'static str| {
        let image = image.clone();
        async move {
            let sink = RecordingSink::new();
            resource::put(&runner(runtime, &sink), run_of(image), &json!({"mode": mode}), None, &[]).await.unwrap_err()
        }
    };
    let cases: Vec<(ResourceError, &[&str])> = vec![
        (check("invalid-json").await, &["'/opt/resource/check' printed invalid JSON", "this is { not json"]),
        (check("not-an-array").await, &["other than an array of versions", r#"{"ref":"1"}"#]),
        (check("not-objects").await, &["bad version at index 0", "must be an object", r#"["1","2"]"#]),
        (check("number-value").await, &["'ref' is 1, not a string", r#"[{"ref":1}]"#]),
        (get("no-version").await, &["'/opt/resource/in get' printed no version", r#"{"metadata":[]}"#]),
        (put("null-version").await, &["'/opt/resource/out put' printed no version", r#"{"version":null}"#]),
        (get("nothing").await, &["printed no response: (nothing)"]),
        (get("bad-metadata").await, &["printed bad metadata"]),
        (check("exit").await, &["'/opt/resource/check' failed: exit status 3", "partial output"]),
        (get("exit").await, &["failed: exit status 3"]),
    ];
    for (error, expected) in cases {
        let message = error.to_string();
        for part in expected {
            assert!(message.contains(part), "{message:?} should contain {part:?}");
        }
    }
    assert!(matches!(check("exit").await, ResourceError::Failed { exit_code: 3, .. }));

    // Long output is quoted up to 1 KiB.
    let message = check("long").await.to_string();
    assert!(message.contains(&"x".repeat(1024)) && !message.contains(&"x".repeat(1025)), "{}", message.len());
    assert!(message.contains("(1976 more bytes)"), "{message}");

    // A check that prints nothing found nothing, as in Concourse.
    let sink = RecordingSink::new();
    let nothing =
        resource::check(&runner(runtime, &sink), run_of(image.clone()), &json!({"mode": "nothing"}), None).await;
    assert_eq!(nothing.unwrap(), Vec::<Version>::new());
}

#[tokio::test]
async fn mock_check_follows_the_original() {
    let fixture = LocalFixture::new().await;
    let runtime: &dyn Runtime = &fixture.runtime;
    let check = |source: Value, from: Option<Version>| async move {
        let sink = RecordingSink::new();
        let result = resource::check(&runner(runtime, &sink), builtin("mock"), &source, from.as_ref()).await;
        (result, sink.stderr())
    };
    let mock = |v: &str| version(&[("version", v)]);
    assert_eq!(check(json!({}), None).await.0.unwrap(), vec![mock("mock")]);
    assert_eq!(check(json!({"initial_version": "v1"}), None).await.0.unwrap(), vec![mock("v1")]);
    assert_eq!(check(json!({"no_initial_version": true}), None).await.0.unwrap(), vec![]);
    assert_eq!(check(json!({"initial_version": "v1"}), Some(mock("v7"))).await.0.unwrap(), vec![mock("v7")]);
    assert_eq!(check(json!({"force_version": "forced"}), Some(mock("v7"))).await.0.unwrap(), vec![mock("forced")]);

    let (failed, stderr) = check(json!({"check_failure": "im totally failing", "log": "hello log"}), None).await;
    assert!(matches!(failed, Err(ResourceError::Failed { exit_code: 1, .. })), "{failed:?}");
    assert_eq!(stderr, "hello log\nintentionally failing to check: im totally failing\n");

    let started = std::time::Instant::now();
    assert_eq!(check(json!({"check_delay": "300ms"}), None).await.0.unwrap(), vec![mock("mock")]);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));

    let (unknown, stderr) = check(json!({"intial_version": "typo"}), None).await;
    assert!(unknown.is_err());
    assert!(stderr.contains("unknown field `intial_version`"), "{stderr}");
}

#[tokio::test]
async fn mock_get_writes_the_version_and_files_and_put_creates_versions() {
    let fixture = LocalFixture::new().await;
    let runtime: &dyn Runtime = &fixture.runtime;
    let source = json!({
        "create_files": {
            "file1.yml": "foo: bar\n",
            "task.yml": {"platform": "linux", "run": {"path": "true"}},
            "nested/pipeline.yml": "value: START_VARsecretEND_VAR\n"
        },
        "metadata": [{"name": "foo", "value": "bar"}],
        "log": "logged on every action"
    });
    let sink = RecordingSink::new();
    let params = json!({"create_files_via_params": {"file1.yml": "replaced\n", "extra": "x"}});
    let fetched =
        resource::get(&runner(runtime, &sink), builtin("mock"), &source, Some(&params), &version(&[("version", "v3")]))
            .await
            .unwrap();
    let artifact = &fetched.artifact;
    assert_eq!(fetched.result.version, version(&[("version", "v3")]));
    assert_eq!(fetched.result.metadata, vec![resource::MetadataField { name: "foo".into(), value: "bar".into() }]);
    assert_eq!(read(runtime, artifact, "version").await, "v3\n");
    assert_eq!(read(runtime, artifact, "privileged").await, "false\n");
    assert_eq!(read(runtime, artifact, "file1.yml").await, "replaced\n");
    assert_eq!(read(runtime, artifact, "extra").await, "x");
    let task: Value = serde_json::from_str(&read(runtime, artifact, "task.yml").await).unwrap();
    assert_eq!(task, json!({"platform": "linux", "run": {"path": "true"}}));
    assert_eq!(read(runtime, artifact, "nested/pipeline.yml").await, "value: ((secret))\n");
    assert!(sink.stderr().contains("logged on every action\n") && sink.stderr().contains("fetching version: v3\n"));

    let sink = RecordingSink::new();
    let pushed = resource::put(
        &runner(runtime, &sink),
        builtin("mock"),
        &json!({}),
        Some(&json!({"version": "v4", "print_env": true})),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(pushed.version, version(&[("version", "v4")]));
    assert!(sink.stderr().contains("pushing version: v4\n"), "{}", sink.stderr());
    assert!(sink.stderr().contains("env: BUILD_ID=42\n"), "{}", sink.stderr());
    assert!(sink.stderr().contains("env: BUILD_PIPELINE_NAME=pipe\n"), "{}", sink.stderr());

    let sink = RecordingSink::new();
    let from_file = resource::put(
        &runner(runtime, &sink),
        builtin("mock"),
        &json!({}),
        Some(&json!({"file": "fetched/version"})),
        &[("fetched".to_string(), artifact.clone())],
    )
    .await
    .unwrap();
    assert_eq!(from_file.version, version(&[("version", "v3\n")]));

    let sink = RecordingSink::new();
    let nothing = resource::put(&runner(runtime, &sink), builtin("mock"), &json!({}), None, &[]).await;
    assert!(matches!(nothing, Err(ResourceError::Failed { .. })));
    assert!(sink.stderr().contains("no version specified"));
}

#[tokio::test]
async fn a_mirrored_mock_works_as_a_custom_resource_type_and_a_task_image() {
    let fixture = LocalFixture::new().await;
    let runtime: &dyn Runtime = &fixture.runtime;
    // The custom type `custom-type` (type: mock, source: {mirror_self: true,
    // initial_version: custom-type-version}) is checked and fetched...
    let type_source = json!({"mirror_self": true, "initial_version": "custom-type-version"});
    let sink = RecordingSink::new();
    let type_versions = resource::check(&runner(runtime, &sink), builtin("mock"), &type_source, None).await.unwrap();
    let image =
        resource::get(&runner(runtime, &sink), builtin("mock"), &type_source, None, &type_versions[0]).await.unwrap();

    // ...and its image runs the resources of that type: with `source: {}`
    // their initial version is the type's, through MIRRORED_VERSION.
    let image = ImageSpec::Artifact(image.artifact);
    let sink = RecordingSink::new();
    let versions = resource::check(&runner(runtime, &sink), run_of(image.clone()), &json!({}), None).await.unwrap();
    assert_eq!(versions, vec![version(&[("version", "custom-type-version")])], "{}", sink.stderr());
    let fetched =
        resource::get(&runner(runtime, &sink), run_of(image.clone()), &json!({}), None, &versions[0]).await.unwrap();
    assert_eq!(read(runtime, &fetched.artifact, "version").await, "custom-type-version\n");

    // A task with that image sees the image's environment.
    let task_sink = RecordingSink::new();
    let mut task = shell_step("env");
    task.image = Some(image);
    run(runtime, task, task_sink.clone(), CancellationToken::new()).await.unwrap();
    assert!(task_sink.stdout().contains("MIRRORED_VERSION=custom-type-version\n"), "{}", task_sink.stdout());
}

#[tokio::test]
async fn time_checks_fetches_and_puts_times() {
    let fixture = LocalFixture::new().await;
    let runtime: &dyn Runtime = &fixture.runtime;
    let source = json!({"interval": "1h", "location": "America/New_York"});
    let sink = RecordingSink::new();
    let versions = resource::check(&runner(runtime, &sink), builtin("time"), &source, None).await.unwrap();
    assert_eq!(versions.len(), 1, "{}", sink.stderr());
    let now = versions[0]["time"].clone();
    assert!(now.ends_with("-05:00") || now.ends_with("-04:00"), "{now}");

    // Within the interval of the previous version: nothing new.
    let again = resource::check(&runner(runtime, &sink), builtin("time"), &source, Some(&versions[0])).await.unwrap();
    assert_eq!(again, versions);
    let old = version(&[("time", "2020-01-01T00:00:00Z")]);
    let since_old = resource::check(&runner(runtime, &sink), builtin("time"), &source, Some(&old)).await.unwrap();
    assert_eq!(since_old.len(), 2);
    assert_eq!(since_old[0], old);

    let fetched = resource::get(&runner(runtime, &sink), builtin("time"), &source, None, &old).await.unwrap();
    assert_eq!(fetched.result.version, old);
    assert_eq!(read(runtime, &fetched.artifact, "epoch").await, "1577836800");
    assert_eq!(read(runtime, &fetched.artifact, "timestamp").await, "2020-01-01 00:00:00 +0000 UTC");
    let input: Value = serde_json::from_str(&read(runtime, &fetched.artifact, "input").await).unwrap();
    assert_eq!(input["version"], json!({"time": "2020-01-01T00:00:00Z"}));

    let put = resource::put(&runner(runtime, &sink), builtin("time"), &source, None, &[]).await.unwrap();
    assert!(put.version.contains_key("time"));

    let bad = resource::check(&runner(runtime, &sink), builtin("time"), &json!({"start": "9AM"}), None).await;
    assert!(matches!(bad, Err(ResourceError::Failed { .. })));
    assert!(sink.stderr().contains("must configure 'stop' if 'start' is set"), "{}", sink.stderr());
}

/// A bare repository with a work clone that commits to it.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo { dir };
        repo.git(&["init", "--bare", "-b", "main", "origin.git"], None);
        repo.git(&["clone", "origin.git", "work"], None);
        repo
    }

    fn uri(&self) -> String {
        format!("file://{}", self.dir.path().join("origin.git").display())
    }

    fn git(&self, args: &[&str], in_work: Option<()>) -> String {
        let dir = if in_work.is_some() { self.dir.path().join("work") } else { self.dir.path().to_path_buf() };
        let output = Command::new("git").args(args).current_dir(dir).envs(identity()).output().unwrap();
        assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }

    /// Commits a change to `path` and pushes it; returns the commit.
    fn commit(&self, path: &str, message: &str) -> String {
        let file = self.dir.path().join("work").join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, message).unwrap();
        self.git(&["add", "-A"], Some(()));
        self.git(&["commit", "-q", "-m", message], Some(()));
        self.git(&["push", "-q", "origin", "HEAD:main"], Some(()));
        self.git(&["rev-parse", "HEAD"], Some(()))
    }
}

fn identity() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("GIT_AUTHOR_NAME", "Tester"),
        ("GIT_AUTHOR_EMAIL", "tester@example.com"),
        ("GIT_COMMITTER_NAME", "Tester"),
        ("GIT_COMMITTER_EMAIL", "tester@example.com"),
    ])
}

fn refs(versions: &[Version]) -> Vec<String> {
    versions.iter().map(|v| v["ref"].clone()).collect()
}

#[tokio::test]
async fn git_check_lists_commits_oldest_first_with_path_and_tag_filters() {
    let fixture = LocalFixture::new().await;
    let runtime: &dyn Runtime = &fixture.runtime;
    let repo = Repo::new();
    let first = repo.commit("src/a", "first");
    let docs = repo.commit("docs/readme", "docs only");
    let skipped = repo.commit("src/b", "skip me [ci skip]");
    let last = repo.commit("src/c", "last");
    let source = json!({"uri": repo.uri(), "branch": "main"});
    let check = |source: Value, from: Option<&str>| {
        let from = from.map(|r| version(&[("ref", r)]));
        async move {
            let sink = RecordingSink::new();
            let result = resource::check(&runner(runtime, &sink), builtin("git"), &source, from.as_ref()).await;
            result.unwrap_or_else(|err| panic!("{err}: {}", sink.stderr()))
        }
    };
    assert_eq!(refs(&check(source.clone(), None).await), vec![last.clone()]);
    assert_eq!(refs(&check(source.clone(), Some(&first)).await), [first.clone(), docs.clone(), last.clone()]);
    let with_skip = json!({"uri": repo.uri(), "disable_ci_skip": true});
    assert_eq!(refs(&check(with_skip, Some(&docs)).await), [docs.clone(), skipped, last.clone()]);
    let only_src = json!({"uri": repo.uri(), "paths": ["src/*"]});
    assert_eq!(refs(&check(only_src, Some(&first)).await), [first.clone(), last.clone()]);
    let no_docs = json!({"uri": repo.uri(), "ignore_paths": ["src"]});
    assert_eq!(refs(&check(no_docs, None).await), vec![docs.clone()]);
    let depth = json!({"uri": repo.uri(), "version_depth": 2});
    assert_eq!(refs(&check(depth, None).await), [docs.clone(), last.clone()]);
    // A version the repository no longer has: start again from the latest.
    assert_eq!(
        refs(&check(source.clone(), Some("0123456789abcdef0123456789abcdef01234567")).await),
        vec![last.clone()]
    );

    repo.git(&["tag", "v1.0.0", &first], Some(()));
    repo.git(&["tag", "v1.1.0", &last], Some(()));
    repo.git(&["tag", "other", &docs], Some(()));
    repo.git(&["push", "-q", "--tags", "origin"], Some(()));
    let tagged = check(json!({"uri": repo.uri(), "tag_filter": "v*", "version_depth": 5}), None).await;
    assert_eq!(
        tagged,
        vec![
            BTreeMap::from([("ref".to_string(), "v1.0.0".to_string()), ("commit".to_string(), first)]),
            BTreeMap::from([("ref".to_string(), "v1.1.0".to_string()), ("commit".to_string(), last)]),
        ]
    );

    let sink = RecordingSink::new();
    let unsupported = json!({"uri": repo.uri(), "git_crypt_key": "abc"});
    assert!(resource::check(&runner(runtime, &sink), builtin("git"), &unsupported, None).await.is_err());
    assert!(sink.stderr().contains("'git_crypt_key' is not supported"), "{}", sink.stderr());
}

#[tokio::test]
async fn git_get_clones_at_the_version_and_put_pushes_with_tags_and_rebase() {
    let fixture = LocalFixture::new().await;
    let runtime: &dyn Runtime = &fixture.runtime;
    let repo = Repo::new();
    let first = repo.commit("file", "first");
    let second = repo.commit("file", "second");
    let source = json!({"uri": repo.uri(), "branch": "main"});

    let sink = RecordingSink::new();
    let fetched = resource::get(
        &runner(runtime, &sink),
        builtin("git"),
        &source,
        Some(&json!({"depth": 1})),
        &version(&[("ref", &first)]),
    )
    .await
    .unwrap_or_else(|err| panic!("{err}: {}", sink.stderr()));
    assert_eq!(fetched.result.version, version(&[("ref", &first)]));
    assert_eq!(read(runtime, &fetched.artifact, "file").await, "first");
    assert_eq!(read(runtime, &fetched.artifact, ".git/ref").await, format!("{first}\n"));
    assert_eq!(read(runtime, &fetched.artifact, ".git/short_ref").await, first[..7]);
    assert_eq!(read(runtime, &fetched.artifact, ".git/commit_message").await, "first\n");
    assert_eq!(read(runtime, &fetched.artifact, ".git/committer").await, "tester@example.com");
    let metadata: BTreeMap<String, String> =
        fetched.result.metadata.iter().map(|f| (f.name.clone(), f.value.clone())).collect();
    assert_eq!(metadata["commit"], first);
    assert_eq!(metadata["author"], "Tester");

    // A task commits on top of the fetched (older) commit; the branch has
    // moved on since, so a plain push is rejected and a rebase goes through.
    let mut task = shell_step(
        "cd repo && echo from-task > task-file && git add task-file && git commit -q -m from-task && echo v2.0 > ../tag/tag-name",
    );
    task.inputs = vec![InputMount { artifact: fetched.artifact.clone(), path: "repo".into() }];
    task.outputs = vec![
        OutputMount { name: "repo".into(), path: "repo".into() },
        OutputMount { name: "tag".into(), path: "tag".into() },
    ];
    task.process.env = identity().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let task_sink = RecordingSink::new();
    let outcome = run(runtime, task, task_sink.clone(), CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{}", task_sink.stderr());
    let inputs =
        [("repo".to_string(), outcome.outputs["repo"].clone()), ("tag".to_string(), outcome.outputs["tag"].clone())];
    let put_run = || {
        let mut run = builtin("git");
        run.env.extend(identity().into_iter().map(|(k, v)| (k.to_string(), v.to_string())));
        run
    };

    let sink = RecordingSink::new();
    let rejected =
        resource::put(&runner(runtime, &sink), put_run(), &source, Some(&json!({"repository": "repo"})), &inputs).await;
    assert!(rejected.is_err(), "a non-fast-forward push must fail");
    assert!(sink.stderr().contains("rejected"), "{}", sink.stderr());

    let sink = RecordingSink::new();
    let params = json!({"repository": "repo", "rebase": true, "tag": "tag/tag-name", "tag_prefix": "release-"});
    let pushed = resource::put(&runner(runtime, &sink), put_run(), &source, Some(&params), &inputs)
        .await
        .unwrap_or_else(|err| panic!("{err}: {}", sink.stderr()));
    let head = repo.git(&["ls-remote", &repo.uri(), "refs/heads/main"], None);
    let pushed_ref = &pushed.version["ref"];
    assert!(head.starts_with(pushed_ref.as_str()), "{head} vs {pushed_ref}");
    let tags = repo.git(&["ls-remote", "--tags", &repo.uri()], None);
    assert!(tags.contains("refs/tags/release-v2.0"), "{tags}");

    // The new commit sits on top of `second`, and check sees it.
    let sink = RecordingSink::new();
    let newer = resource::check(&runner(runtime, &sink), builtin("git"), &source, Some(&version(&[("ref", &second)])))
        .await
        .unwrap();
    assert_eq!(refs(&newer), [second, pushed_ref.clone()]);
}
