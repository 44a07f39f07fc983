//! The scenarios of Concourse's acceptance suite (`testflight/`) that need
//! no containers, run against Concourse's own fixture pipelines and driven
//! as `fly` drives them: set-pipeline, unpause, check-resource,
//! trigger-job -w, abort-build, rerun-build. Written in our own words from
//! the behaviour those tests describe.
//!
//! Each scenario takes the database and the runtime it runs on ([`On`]):
//! here both databases on the local runtime; `tests/cluster/pipelines.rs`
//! runs the same code on the Kubernetes runtime.

use reqwest::Method;
use serde_json::{Value, json};

use super::support::{Backend, On, TestServer, Watched};

/// A testflight fixture with `((name))` vars filled in, as `fly
/// set-pipeline -v name=value` does before sending it.
fn fixture(name: &str, vars: &[(&str, &str)]) -> String {
    let path = super::support::source_root().join("tests/fixtures/pipelines/testflight").join(name);
    let mut yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (var, value) in vars {
        yaml = yaml.replace(&format!("(({var}))"), value);
    }
    yaml
}

/// Asserts that `log` says each of `lines` in this order.
#[track_caller]
fn says_in_order(log: &str, lines: &[&str]) {
    let mut rest = log;
    for line in lines {
        let at = rest.find(line).unwrap_or_else(|| panic!("expected {line:?} (in this order) in:\n{log}"));
        rest = &rest[at + line.len()..];
    }
}

#[track_caller]
fn never_says(log: &str, lines: &[&str]) {
    for line in lines {
        assert!(!log.contains(line), "did not expect {line:?} in:\n{log}");
    }
}

/// A version unique to this test run, as testflight makes with a UUID.
fn unique(tag: &str) -> String {
    format!("{tag}-{}", rand_suffix())
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

impl TestServer {
    /// `fly check-resource -r P/R [-f version:V]`, waiting for the check
    /// build to end; returns its status.
    async fn check_resource(&self, token: &str, pipeline: &str, resource: &str, from: Option<&str>) -> String {
        let body = match from {
            Some(version) => json!({ "from": { "version": version } }),
            None => json!({}),
        };
        let path = format!("/api/v1/teams/main/pipelines/{pipeline}/resources/{resource}/check");
        let response = self.request(Method::POST, &path, Some(token)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 201, "check {pipeline}/{resource}");
        let build: Value = response.json().await.unwrap();
        let finished = self
            .wait_for(token, &format!("/api/v1/builds/{}", build["id"]), "the check to finish", |b| {
                !matches!(b["status"].as_str(), Some("pending" | "started"))
            })
            .await;
        finished["status"].as_str().unwrap().to_string()
    }

    /// testflight's `newMockVersion`: a new version of a mock resource by
    /// checking from it; returns the version.
    async fn new_mock_version(&self, token: &str, pipeline: &str, resource: &str, tag: &str) -> String {
        let version = unique(tag);
        assert_eq!(self.check_resource(token, pipeline, resource, Some(&version)).await, "succeeded");
        version
    }

    async fn trigger(&self, token: &str, pipeline: &str, job: &str) -> i64 {
        let path = format!("/api/v1/teams/main/pipelines/{pipeline}/jobs/{job}/builds");
        let response = self.request(Method::POST, &path, Some(token)).send().await.unwrap();
        assert_eq!(response.status(), 200, "trigger {pipeline}/{job}");
        response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    /// `fly builds -j P/J`: the job's build names, newest first.
    async fn build_names(&self, token: &str, pipeline: &str, job: &str) -> Vec<String> {
        let builds =
            self.get_json(&format!("/api/v1/teams/main/pipelines/{pipeline}/jobs/{job}/builds"), Some(token)).await;
        builds.as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap().to_string()).collect()
    }
}

/// The versions the build's gets fetched, as `fly watch` shows them.
fn fetched(watched: &Watched) -> Vec<String> {
    let gets = watched.of_type("finish-get");
    gets.iter().map(|e| e["data"]["version"]["version"].as_str().unwrap_or_default().to_string()).collect()
}

/// The watched build's status and what `fly watch` would print.
fn outcome(watched: &Watched) -> (String, String) {
    (watched.status(), watched.output())
}

pub async fn hooks_run_under_the_right_conditions(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "hooks", &fixture("hooks.yml", &[])).await;

    let (_, passing) = server.trigger_and_watch(&token, "hooks", "some-passing-job").await;
    let (status, log) = outcome(&passing);
    assert_eq!(status, "succeeded", "{log}");
    says_in_order(
        &log,
        &["passing job on success", "passing job ensure", "passing job on job success", "passing job on job ensure"],
    );
    never_says(&log, &["on failure", "on job failure", "on abort", "on job abort", "on error", "on job error"]);

    let (_, failing) = server.trigger_and_watch(&token, "hooks", "some-failing-job").await;
    let (status, log) = outcome(&failing);
    assert_eq!(status, "failed", "{log}");
    says_in_order(
        &log,
        &["failing job on failure", "failing job ensure", "failing job on job failure", "failing job on job ensure"],
    );
    never_says(&log, &["on success", "on job success", "on abort", "on job abort", "on error", "on job error"]);

    // Abort while the task waits, once it has said so.
    let aborted = server.trigger(&token, "hooks", "some-aborted-job").await;
    wait_for_log(&server, &token, aborted, "waiting to be aborted").await;
    let abort = server.request(Method::PUT, &format!("/api/v1/builds/{aborted}/abort"), Some(&token));
    assert_eq!(abort.send().await.unwrap().status(), 200);
    let (status, log) = outcome(&server.watch(&token, aborted).await);
    assert_eq!(status, "aborted", "{log}");
    says_in_order(
        &log,
        &["aborted job on abort", "aborted job ensure", "aborted job on job abort", "aborted job on job ensure"],
    );
    never_says(&log, &["on success", "on job success", "on failure", "on job failure", "on error", "on job error"]);

    let (_, errored) = server.trigger_and_watch(&token, "hooks", "some-errored-job").await;
    let (status, log) = outcome(&errored);
    assert_eq!(status, "errored", "{log}");
    says_in_order(
        &log,
        &["errored job on error", "errored job ensure", "errored job on job error", "errored job on job ensure"],
    );
    never_says(&log, &["on success", "on job success", "on failure", "on job failure", "on abort", "on job abort"]);
    server.stop().await;
}

/// Polls the build's events until its log contains `text` (deadline 30 s).
async fn wait_for_log(server: &TestServer, token: &str, build_id: i64, text: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        // Without `end`, a running build's stream stays open: read what is there so far.
        let response = server.get(&format!("/api/v1/builds/{build_id}/events"), Some(token)).await;
        let mut stream = futures_util::StreamExt::boxed(response.bytes_stream());
        let mut seen = String::new();
        while let Ok(Some(Ok(chunk))) =
            tokio::time::timeout(std::time::Duration::from_millis(200), futures_util::StreamExt::next(&mut stream))
                .await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(text) {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "build {build_id} never said {text:?}: {seen}");
    }
}

pub async fn timeouts_fail_the_step_and_run_failure_hooks(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "timeout-hooks", &fixture("timeout_hooks.yml", &[])).await;
    server.set_and_unpause(&token, "timeout", &fixture("timeout.yml", &[])).await;

    let (_, hooks) = server.trigger_and_watch(&token, "timeout-hooks", "duration-fail-job").await;
    let (status, log) = outcome(&hooks);
    assert_eq!(status, "failed", "{log}");
    says_in_order(&log, &["duration fail job on failure", "duration fail job ensure"]);
    never_says(&log, &["duration fail job on success"]);

    let (_, in_time) = server.trigger_and_watch(&token, "timeout", "duration-successful-job").await;
    assert_eq!(outcome(&in_time).0, "succeeded", "{}", in_time.log());
    assert!(in_time.log().contains("passing-task succeeded"));
    let (_, too_slow) = server.trigger_and_watch(&token, "timeout", "duration-fail-job").await;
    let (status, log) = outcome(&too_slow);
    assert_eq!(status, "failed", "{log}");
    assert!(log.contains("timeout exceeded"), "{log}");
    server.stop().await;
}

pub async fn try_do_fail_and_in_parallel(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "try", &fixture("try.yml", &[])).await;
    server.set_and_unpause(&token, "do", &fixture("do.yml", &[])).await;
    server.set_and_unpause(&token, "fail", &fixture("fail.yml", &[])).await;
    let initial = unique("initial");
    server.set_and_unpause(&token, "matrix", &fixture("matrix.yml", &[("initial_version", &initial)])).await;

    let (_, tried) = server.trigger_and_watch(&token, "try", "try-job").await;
    assert_eq!(tried.status(), "succeeded", "{}", tried.log());
    assert!(tried.log().contains("passing-task succeeded"));

    let (_, done) = server.trigger_and_watch(&token, "do", "do-job").await;
    assert_eq!(done.status(), "succeeded");
    says_in_order(&done.log(), &["running do step 1", "running do step 2", "running do step 3"]);

    let (_, failed) = server.trigger_and_watch(&token, "fail", "failing-job").await;
    assert_eq!(failed.status(), "failed");

    let (_, matrix) = server.trigger_and_watch(&token, "matrix", "fancy-build-matrix").await;
    let (status, log) = outcome(&matrix);
    assert_eq!(status, "failed", "{log}");
    says_in_order(
        &log,
        &[&format!("passing-unit-1/file passing-unit-2/file {initial}"), &format!("failed in_parallel {initial}")],
    );
    server.stop().await;
}

pub async fn retry_attempts_until_the_step_succeeds(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "retry", &fixture("retry.yml", &[])).await;
    let (_, retried) = server.trigger_and_watch(&token, "retry", "retry-job").await;
    let (status, log) = outcome(&retried);
    assert_eq!(status, "succeeded", "{log}");
    says_in_order(&log, &["attempts: 1; failing", "attempts: 2; failing", "attempts: 3; success!"]);
    assert_eq!(log.matches("attempts:").count(), 3, "{log}");
    server.stop().await;
}

pub async fn across_runs_every_combination_and_puts_each_value(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "across", &fixture("across.yml", &[])).await;
    let (_, watched) = server.trigger_and_watch(&token, "across", "job").await;
    let (status, log) = outcome(&watched);
    assert_eq!(status, "succeeded", "{log}");
    let mut expected = Vec::new();
    for first in ["static1", "static2"] {
        for second in ["dynamic1", "dynamic2", "dynamic3", "4"] {
            expected.push(format!("running across {first} {second}"));
        }
    }
    says_in_order(&log, &expected.iter().map(String::as_str).collect::<Vec<_>>());
    for value in ["dynamic1", "dynamic2", "dynamic3", "4"] {
        says_in_order(&log, &[&format!("pushing version: v_{value}"), &format!("fetching version: v_{value}")]);
    }
    server.stop().await;
}

pub async fn load_var_and_task_inputs_outputs_and_mappings(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "load-var", &fixture("load-var-step.yml", &[])).await;
    server.set_and_unpause(&token, "outputs", &fixture("task-outputs.yml", &[])).await;
    server.set_and_unpause(&token, "optional", &fixture("optional-inputs.yml", &[])).await;

    let (_, loaded) = server.trigger_and_watch(&token, "load-var", "use-var").await;
    assert_eq!(loaded.status(), "succeeded", "{}", loaded.log());

    let (_, outputs) = server.trigger_and_watch(&token, "outputs", "some-job").await;
    let (status, log) = outcome(&outputs);
    assert_eq!(status, "succeeded", "{log}");
    assert!(log.contains("./output-1/file-1") && log.contains("./output-2/file-2"), "{log}");

    let (_, optional) = server.trigger_and_watch(&token, "optional", "job-using-optional-inputs").await;
    let (status, log) = outcome(&optional);
    assert_eq!(status, "succeeded", "{log}");
    says_in_order(&log, &["step 1 complete", "step 2 complete", "step 3 complete", "SUCCESS"]);
    server.stop().await;
}

pub async fn task_caches_keep_only_cached_paths_between_builds(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "caches", &fixture("task-caches.yml", &[])).await;

    let (_, first) = server.trigger_and_watch(&token, "caches", "simple").await;
    let (status, log) = outcome(&first);
    assert_eq!(status, "succeeded", "{log}");
    says_in_order(
        &log,
        &[
            "not-cached-from-first-task",
            "not-cached-from-second-task",
            "blob-contents-from-second-task",
            "second-task-cache-contents",
        ],
    );
    never_says(&log, &["blob-contents-from-first-task"]);
    assert_eq!(log.matches("second-task-cache-contents").count(), 1, "{log}");

    // The second run finds what the cached paths held, and only that.
    let (_, second) = server.trigger_and_watch(&token, "caches", "simple").await;
    let (status, log) = outcome(&second);
    assert_eq!(status, "succeeded", "{log}");
    assert!(log.contains("blob-contents-from-second-task\nblob-contents-from-second-task"), "{log}");
    assert!(log.contains("second-task-cache-contents\nsecond-task-cache-contents"), "{log}");
    assert_eq!(log.matches("not-cached-from-second-task").count(), 1, "{log}");
    never_says(&log, &["blob-contents-from-first-task"]);
    server.stop().await;
}

pub async fn latest_every_and_pinned_versions(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    let hash = unique("hash");
    let job = "some-passing-job";

    server.set_and_unpause(&token, "latest", &fixture("resource-version-latest.yml", &[("hash", &hash)])).await;
    let first = server.new_mock_version(&token, "latest", "some-resource", "guid1").await;
    let (_, watched) = server.trigger_and_watch(&token, "latest", job).await;
    assert!(watched.log().contains(&first), "{}", watched.log());
    for tag in ["guid2", "guid3"] {
        server.new_mock_version(&token, "latest", "some-resource", tag).await;
    }
    let fourth = server.new_mock_version(&token, "latest", "some-resource", "guid4").await;
    let (_, watched) = server.trigger_and_watch(&token, "latest", job).await;
    assert!(watched.log().contains(&fourth), "latest skips to the newest: {}", watched.log());

    server.set_and_unpause(&token, "every", &fixture("resource-version-every.yml", &[("hash", &hash)])).await;
    let first = server.new_mock_version(&token, "every", "some-resource", "guid1").await;
    let (_, watched) = server.trigger_and_watch(&token, "every", job).await;
    assert!(watched.log().contains(&first), "{}", watched.log());
    let mut later = Vec::new();
    for tag in ["guid2", "guid3", "guid4"] {
        later.push(server.new_mock_version(&token, "every", "some-resource", tag).await);
    }
    for version in &later {
        let (_, watched) = server.trigger_and_watch(&token, "every", job).await;
        assert!(watched.log().contains(version.as_str()), "every runs each version in turn: {}", watched.log());
    }

    // Pinning the job's get to the third version in the config.
    let vars = [("hash", hash.as_str()), ("pinned_version", later[1].as_str())];
    let response = server.set_pipeline(&token, "main", "every", &fixture("pinned-version.yml", &vars)).await;
    assert!(response.status().is_success());
    for _ in 0..2 {
        let (_, watched) = server.trigger_and_watch(&token, "every", job).await;
        assert!(watched.log().contains(later[1].as_str()), "pinned: {}", watched.log());
    }
    server.stop().await;
}

pub async fn a_pinned_resource_checks_and_runs_with_its_pin(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    let hash = unique("hash");
    let vars = [("hash", hash.as_str()), ("pinned_resource_version", "{version: v1}"), ("version_config", "null")];
    server.set_and_unpause(&token, "pinned", &fixture("pinned-resource-simple-trigger.yml", &vars)).await;
    assert_eq!(server.check_resource(&token, "pinned", "some-resource", None).await, "succeeded");
    let (_, watched) = server.trigger_and_watch(&token, "pinned", "some-passing-job").await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.log());
    assert!(watched.log().contains("v1"), "{}", watched.log());
    server.stop().await;
}

pub async fn serial_groups_wait_for_inputs_without_blocking_others(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    let hash = unique("hash");
    server
        .set_and_unpause(
            &token,
            "serial",
            &fixture("serial-groups-inputs-updated.yml", &[("hash-1", &hash), ("hash-2", &hash)]),
        )
        .await;

    // Nothing to fetch for the pending job yet: its build waits.
    let pending = server.trigger(&token, "serial", "some-pending-job").await;
    let first = server.new_mock_version(&token, "serial", "some-resource", "some-1").await;
    let (_, passing) = server.trigger_and_watch(&token, "serial", "some-passing-job").await;
    assert_eq!(fetched(&passing), [first]);
    let second = server.new_mock_version(&token, "serial", "some-resource", "some-2").await;
    let (_, passing) = server.trigger_and_watch(&token, "serial", "some-passing-job").await;
    assert_eq!(fetched(&passing), std::slice::from_ref(&second));
    let build = server.get_json(&format!("/api/v1/builds/{pending}"), Some(&token)).await;
    assert_eq!(build["status"], "pending", "still waiting for other-resource");

    let other = server.new_mock_version(&token, "serial", "other-resource", "other-1").await;
    let watched = server.watch(&token, pending).await;
    let (status, log) = outcome(&watched);
    assert_eq!(status, "succeeded", "{log}");
    assert!(log.contains(&second) && log.contains(&other), "{log}");

    // A resource that is never checked on its own is checked for a manual trigger.
    server.set_and_unpause(&token, "serial-never", &fixture("serial-groups.yml", &[("hash", &hash)])).await;
    let (_, watched) = server.trigger_and_watch(&token, "serial-never", "serial-true-job").await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.log());
    server.stop().await;
}

pub async fn set_pipeline_step_sets_other_pipelines_and_itself(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    let vars = [("team_name", ""), ("pipeline_name", "created")];
    server.set_and_unpause(&token, "parent", &fixture("set-pipeline.yml", &vars)).await;
    assert_eq!(server.get("/api/v1/teams/main/pipelines/created", Some(&token)).await.status(), 404);

    let (_, set) = server.trigger_and_watch(&token, "parent", "sp").await;
    let (status, log) = outcome(&set);
    assert_eq!(status, "succeeded", "{log}");
    says_in_order(&log, &["setting pipeline: created", "done"]);
    server.request(Method::PUT, "/api/v1/teams/main/pipelines/created/unpause", Some(&token)).send().await.unwrap();
    let (_, child) = server.trigger_and_watch(&token, "created", "normal-job").await;
    assert!(child.log().contains("hello world"), "{}", child.log());

    let (_, instanced) = server.trigger_and_watch(&token, "parent", "sp-with-instance-vars").await;
    let (status, log) = outcome(&instanced);
    assert_eq!(status, "succeeded", "{log}");
    says_in_order(&log, &["setting pipeline: created/greetings:instanced-pipeline", "done"]);
    let instance = r#"vars={"greetings":"instanced-pipeline"}"#;
    let unpause = format!("/api/v1/teams/main/pipelines/created/unpause?{instance}");
    assert_eq!(server.request(Method::PUT, &unpause, Some(&token)).send().await.unwrap().status(), 200);
    let trigger = format!("/api/v1/teams/main/pipelines/created/jobs/normal-job/builds?{instance}");
    let response = server.request(Method::POST, &trigger, Some(&token)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert!(server.watch(&token, id).await.log().contains("instanced-pipeline"));

    // `set_pipeline: self` updates the pipeline running the step.
    let vars = [("team_name", ""), ("pipeline_name", "self")];
    server.set_and_unpause(&token, "myself", &fixture("set-pipeline.yml", &vars)).await;
    let (_, set) = server.trigger_and_watch(&token, "myself", "sp").await;
    says_in_order(&set.log(), &["setting pipeline: myself", "done"]);
    let (_, normal) = server.trigger_and_watch(&token, "myself", "normal-job").await;
    assert!(normal.log().contains("hello world"), "{}", normal.log());
    server.stop().await;
}

pub async fn a_non_main_team_cannot_set_another_teams_pipeline(on: On) {
    let server = TestServer::start_with_users(on, &[("tester", "tester-password")]).await;
    let admin = server.admin_token().await;
    server.set_team(&admin, "testflight", "owner", "tester").await;
    let token = server.login("tester", "tester-password").await;
    let yaml = fixture("set-pipeline.yml", &[("team_name", "main"), ("pipeline_name", "intruder")]);
    let response = server.set_pipeline(&token, "testflight", "parent", &yaml).await;
    assert!(response.status().is_success());
    let unpause = server.request(Method::PUT, "/api/v1/teams/testflight/pipelines/parent/unpause", Some(&token));
    assert_eq!(unpause.send().await.unwrap().status(), 200);
    let path = "/api/v1/teams/testflight/pipelines/parent/jobs/sp/builds";
    let response = server.request(Method::POST, path, Some(&token)).send().await.unwrap();
    let id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let watched = server.watch(&token, id).await;
    let (status, log) = outcome(&watched);
    assert_eq!(status, "errored", "{log}");
    assert!(log.contains("only main team can set another team's pipeline"), "{log}");
    assert_eq!(server.get("/api/v1/teams/main/pipelines/intruder", Some(&admin)).await.status(), 404);
    server.stop().await;
}

pub async fn renames_keep_history(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;

    // A renamed job keeps its builds.
    server.set_and_unpause(&token, "rename", &fixture("simple.yml", &[])).await;
    let (_, watched) = server.trigger_and_watch(&token, "rename", "simple").await;
    assert!(watched.log().contains("Hello, world!"));
    let renamed = fixture("rename-simple.yml", &[]);
    assert!(server.set_pipeline(&token, "main", "rename", &renamed).await.status().is_success());
    assert_eq!(server.build_names(&token, "rename", "rename-simple").await, ["1"]);

    // A renamed pipeline keeps running.
    let rename = server.request(Method::PUT, "/api/v1/teams/main/pipelines/rename/rename", Some(&token));
    assert_eq!(rename.json(&json!({ "name": "renamed" })).send().await.unwrap().status(), 200);
    let (_, watched) = server.trigger_and_watch(&token, "renamed", "rename-simple").await;
    assert!(watched.log().contains("Hello, world!"));

    // A renamed resource keeps its versions.
    server.set_and_unpause(&token, "versions", &fixture("resource-with-versions.yml", &[])).await;
    let mut versions = Vec::new();
    for tag in ["guid1", "guid2", "guid3"] {
        versions.push(server.new_mock_version(&token, "versions", "some-resource", tag).await);
    }
    let (_, watched) = server.trigger_and_watch(&token, "versions", "some-passing-job").await;
    assert!(watched.log().contains(&format!("fetched version: {}", versions[2])), "{}", watched.log());
    let renamed = fixture("rename-resource.yml", &[]);
    assert!(server.set_pipeline(&token, "main", "versions", &renamed).await.status().is_success());
    let (_, watched) = server.trigger_and_watch(&token, "versions", "some-passing-job").await;
    assert!(watched.log().contains(&format!("fetched version: {}", versions[2])), "{}", watched.output());
    let listed = server
        .get_json("/api/v1/teams/main/pipelines/versions/resources/some-new-resource/versions", Some(&token))
        .await;
    let listed: Vec<&str> =
        listed.as_array().unwrap().iter().map(|v| v["version"]["version"].as_str().unwrap()).collect();
    assert_eq!(listed, [versions[2].as_str(), versions[1].as_str(), versions[0].as_str()]);
    server.stop().await;
}

pub async fn reruns_are_named_after_the_build_they_repeat(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    let hash = unique("hash");
    server.set_and_unpause(&token, "rerun", &fixture("simple-trigger.yml", &[("hash", &hash)])).await;
    let job = "some-passing-job";
    let builds = "/api/v1/teams/main/pipelines/rerun/jobs/some-passing-job/builds";

    let first = server.new_mock_version(&token, "rerun", "some-resource", "first-version").await;
    server.wait_for(&token, builds, "build 1", |b| b[0]["status"] == "succeeded").await;
    let second = server.new_mock_version(&token, "rerun", "some-resource", "second-version").await;
    server.wait_for(&token, builds, "build 2", |b| b[0]["name"] == "2" && b[0]["status"] == "succeeded").await;
    assert_eq!(server.build_names(&token, "rerun", job).await, ["2", "1"]);

    // A rerun of build 1 runs with build 1's version, not the newest.
    let rerun = server.request(Method::POST, &format!("{builds}/1"), Some(&token)).send().await.unwrap();
    assert_eq!(rerun.status(), 200);
    let rerun: Value = rerun.json().await.unwrap();
    assert_eq!(rerun["name"], "1.1");
    let watched = server.watch(&token, rerun["id"].as_i64().unwrap()).await;
    assert!(watched.log().contains(&first) && !watched.log().contains(&second), "{}", watched.log());

    let again = server.request(Method::POST, &format!("{builds}/1.1"), Some(&token)).send().await.unwrap();
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["name"], "1.2");
    server.watch(&token, again["id"].as_i64().unwrap()).await;
    let names = server.build_names(&token, "rerun", job).await;
    assert!(names.contains(&"1.1".to_string()) && names.contains(&"1.2".to_string()), "{names:?}");
    server.stop().await;
}

/// A resource type whose `out` lists what the put was given.
fn lister_type() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let scripts = [
        ("check", "cat >/dev/null; echo '[{\"ref\":\"1\"}]'"),
        ("in", "cat >/dev/null; echo '{\"version\":{\"ref\":\"1\"}}'"),
        (
            "out",
            "cat >/dev/null; for f in \"$1\"/*; do [ -e \"$f\" ] && echo \"put sees $(basename \"$f\")\" >&2; done; echo '{\"version\":{\"ref\":\"2\"}}'",
        ),
    ];
    std::fs::create_dir(dir.path().join("lister")).unwrap();
    for (name, body) in scripts {
        let path = dir.path().join("lister").join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// On the local runtime only: the lister type comes from `--resource-types-dir`.
pub async fn puts_get_the_inputs_they_name_or_detect(backend: Backend) {
    let types = lister_type();
    let server = TestServer::start_with_resource_types(backend, types.path()).await;
    let token = server.admin_token().await;
    let yaml = fixture("put-inputs.yml", &[])
        .replace("- name: some-resource\n  type: mock\n", "- name: some-resource\n  type: lister\n");
    server.set_and_unpause(&token, "put-inputs", &yaml).await;
    let sees = |log: &str| -> Vec<String> {
        let mut seen: Vec<String> =
            log.lines().filter_map(|l| l.strip_prefix("put sees ")).map(str::to_string).collect();
        seen.sort();
        seen
    };
    for (job, expected) in [
        ("job-using-specified-inputs", vec!["specified-input"]),
        ("job-using-all-inputs", vec!["all-input", "specified-input"]),
        ("job-using-empty-inputs", vec![]),
        ("job-using-no-inputs", vec!["specified-input"]),
        ("job-using-detect-inputs-simple", vec!["specified-input"]),
        ("job-using-detect-inputs-complex", vec!["map-input", "specified-input"]),
    ] {
        let (_, watched) = server.trigger_and_watch(&token, "put-inputs", job).await;
        let (status, log) = outcome(&watched);
        // Each job ends with a failing task, after its put.
        assert_eq!(status, "failed", "{job}: {log}");
        assert_eq!(sees(&log), expected, "{job}: {log}");
    }
    server.stop().await;
}

const PARALLELISM: &str = r#"
jobs:
- name: limited
  plan:
  - in_parallel:
      limit: 1
      steps:
      - task: one
        params: {N: "1"}
        config: &say
          platform: linux
          run: {path: sh, args: [-c, 'echo "start $N"; sleep 1; echo "end $N"']}
      - {task: two, config: *say, params: {N: "2"}}
- name: unlimited
  plan:
  - in_parallel:
    - {task: one, config: *say, params: {N: "1"}}
    - {task: two, config: *say, params: {N: "2"}}
- name: fail-fast
  plan:
  - in_parallel:
      fail_fast: true
      steps:
      - task: fails
        config: {platform: linux, run: {path: sh, args: [-c, 'sleep 0.2; exit 1']}}
      - task: slow
        config: {platform: linux, run: {path: sh, args: [-c, 'sleep 20; echo finished anyway']}}
- name: across-all-at-once
  plan:
  - across:
    - var: num
      values: ["1", "2", "3"]
      max_in_flight: all
    task: each
    config: *say
    params: {N: ((.:num))}
"#;

pub async fn in_parallel_and_across_honour_limits_and_fail_fast(on: On) {
    let server = TestServer::start(on).await;
    let token = server.admin_token().await;
    server.set_and_unpause(&token, "parallel", PARALLELISM).await;
    let lines = |watched: &Watched| -> Vec<String> {
        watched.log().lines().filter(|l| l.starts_with("start") || l.starts_with("end")).map(str::to_string).collect()
    };

    let (_, limited) = server.trigger_and_watch(&token, "parallel", "limited").await;
    assert_eq!(lines(&limited), ["start 1", "end 1", "start 2", "end 2"]);

    let (_, unlimited) = server.trigger_and_watch(&token, "parallel", "unlimited").await;
    let order = lines(&unlimited);
    assert!(order[..2].iter().all(|l| l.starts_with("start")), "both start before either ends: {order:?}");

    let started = std::time::Instant::now();
    let (_, fast) = server.trigger_and_watch(&token, "parallel", "fail-fast").await;
    assert_eq!(fast.status(), "failed");
    assert!(!fast.log().contains("finished anyway"), "{}", fast.log());
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "the slow step was stopped");

    let (_, across) = server.trigger_and_watch(&token, "parallel", "across-all-at-once").await;
    assert_eq!(across.status(), "succeeded", "{}", across.output());
    let order = lines(&across);
    assert_eq!(order.len(), 6, "{order:?}");
    assert!(order[..3].iter().all(|l| l.starts_with("start")), "all three start at once: {order:?}");
    server.stop().await;
}

crate::on_both_backends!(
    in_parallel_and_across_honour_limits_and_fail_fast,
    puts_get_the_inputs_they_name_or_detect,
    hooks_run_under_the_right_conditions,
    timeouts_fail_the_step_and_run_failure_hooks,
    try_do_fail_and_in_parallel,
    retry_attempts_until_the_step_succeeds,
    across_runs_every_combination_and_puts_each_value,
    load_var_and_task_inputs_outputs_and_mappings,
    task_caches_keep_only_cached_paths_between_builds,
    latest_every_and_pinned_versions,
    a_pinned_resource_checks_and_runs_with_its_pin,
    serial_groups_wait_for_inputs_without_blocking_others,
    set_pipeline_step_sets_other_pipelines_and_itself,
    a_non_main_team_cannot_set_another_teams_pipeline,
    renames_keep_history,
    reruns_are_named_after_the_build_they_repeat,
);
