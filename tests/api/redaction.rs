//! A secret a build looked up never leaves it in the clear (issue 9): not
//! in its events (task config, params, resource metadata, errors, output
//! printed in pieces), not in check builds, not in any API answer about
//! the build or its resources, not in the rows the database holds.
//! `tests/telemetry/redaction.rs` searches atc's log and spans.

use reqwest::Method;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::secrets::{SECRET, assert_no_secret, fixture};
use crate::support::{Backend, TestServer, local_runtime_with_types, server_options_with};

impl TestServer {
    /// The body of a GET, whatever its status.
    async fn body(&self, path: &str, token: Option<&str>) -> String {
        self.get(path, token).await.text().await.unwrap()
    }

    /// `fly check-resource`: the check build's id once it has ended.
    async fn checked(&self, token: &str, resource: &str) -> i64 {
        let path = format!("/api/v1/teams/main/pipelines/leaky/resources/{resource}/check");
        let response = self.request(Method::POST, &path, Some(token)).send().await.unwrap();
        assert_eq!(response.status(), 201, "check {resource}");
        let id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        self.wait_for(token, &format!("/api/v1/builds/{id}"), "the check to end", |build| {
            !matches!(build["status"].as_str(), Some("pending" | "started"))
        })
        .await;
        id
    }
}

async fn secrets_never_leave_a_build(backend: Backend) {
    let dummy = atc::creds::Dummy::new([("topsecret".to_string(), Value::String(SECRET.into()))].into_iter().collect());
    never_leave_a_build(backend, std::sync::Arc::new(dummy)).await;
}

/// The same, with `((topsecret))` read from a real OpenBao server.
async fn secrets_from_vault_never_leave_a_build(backend: Backend) {
    let prefix = crate::support::openbao::mount(2).await;
    crate::support::openbao::put(&prefix, 2, "main/topsecret", serde_json::json!({ "value": SECRET })).await;
    never_leave_a_build(backend, crate::vault::vault(&prefix, std::time::Duration::from_secs(10))).await;
}

/// The same, with `((topsecret))` a SecureString of a real `moto_server` (SSM).
async fn secrets_from_ssm_never_leave_a_build(backend: Backend) {
    let prefix = crate::aws::unique_prefix();
    crate::support::moto::put_parameter(&format!("{prefix}/main/topsecret"), SECRET, true).await;
    never_leave_a_build(backend, crate::aws::ssm(&prefix)).await;
}

/// The same, with `((topsecret))` a Secret on the test Kubernetes control plane.
async fn secrets_from_kubernetes_never_leave_a_build(backend: Backend) {
    let prefix = crate::kubernetes_creds::unique_prefix();
    let client = crate::support::control_plane::admin().await;
    let namespace = format!("{prefix}main");
    crate::support::control_plane::namespace(&client, &namespace).await;
    crate::support::control_plane::secret(&client, &namespace, "topsecret", &[("value", SECRET)]).await;
    never_leave_a_build(backend, crate::kubernetes_creds::kubernetes(&prefix, None, None)).await;
}

/// The same, with `((topsecret))` a CredHub password (the fake CredHub).
async fn secrets_from_credhub_never_leave_a_build(backend: Backend) {
    use crate::support::credhub::{CLIENT_ID, CLIENT_SECRET, FakeCredHub};
    let fake = FakeCredHub::start().await;
    fake.set("/concourse/main/topsecret", "password", Value::String(SECRET.into()));
    let settings = atc::creds::credhub::CredHubSettings {
        url: Some(fake.url.clone()),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(CLIENT_SECRET.into()),
        ..Default::default()
    };
    let credhub = atc::creds::credhub::CredHub::new(settings.check().unwrap());
    never_leave_a_build(backend, std::sync::Arc::new(credhub)).await;
}

on_both_backends!(
    secrets_from_credhub_never_leave_a_build,
    secrets_from_vault_never_leave_a_build,
    secrets_from_ssm_never_leave_a_build,
    secrets_from_kubernetes_never_leave_a_build
);

async fn never_leave_a_build(backend: Backend, credentials: std::sync::Arc<dyn atc::creds::CredentialManager>) {
    let (runtime, _work) = local_runtime_with_types(Some(fixture("types"))).await;
    let mut options = server_options_with(runtime, &[]);
    options.credentials = credentials;
    let server = TestServer::start_with(backend, options).await;
    let token = server.admin_token().await;
    let yaml = std::fs::read_to_string(fixture("pipeline.yml")).unwrap();
    server.set_and_unpause(&token, "leaky", &yaml).await;
    let expose = server.request(Method::PUT, "/api/v1/teams/main/pipelines/leaky/expose", Some(&token));
    assert_eq!(expose.send().await.unwrap().status(), 200);

    let check = server.checked(&token, "echoed").await;
    let broken_check = server.checked(&token, "broken-check").await;
    let check_log = server.watch(&token, check).await;
    assert_eq!(check_log.status(), "succeeded", "{}", check_log.output());
    assert!(check_log.log().contains("{\"source\":{\"token\":\"((redacted))\"}"), "{}", check_log.log());
    let broken_check_log = server.watch(&token, broken_check).await;
    assert_eq!(broken_check_log.status(), "failed", "{}", broken_check_log.output());

    let (build, watched) = server.trigger_and_watch(&token, "leaky", "leaky").await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.output());
    // What each kind of event held is there, redacted.
    let task_config = &watched.of_type("initialize-task")[0]["data"]["config"]["run"]["args"];
    assert_eq!(task_config[3], "((redacted))", "{task_config}");
    assert_eq!(task_config[4], "--token=((redacted))", "{task_config}");
    let log = watched.log();
    assert!(log.contains("arg: ((redacted))\n") && log.contains("env: ((redacted))|((redacted))\n"), "{log}");
    let put = &watched.of_type("finish-put")[0]["data"];
    assert_eq!(put["metadata"][0], serde_json::json!({ "name": "echo", "value": "((redacted))" }), "{put}");
    let errors: Vec<&str> = watched.of_type("error").iter().map(|e| e["data"]["message"].as_str().unwrap()).collect();
    assert_eq!(errors.len(), 2, "the garbage and the failing get: {errors:?}");
    assert!(errors.iter().all(|e| e.contains("\"echo\":\"((redacted))\"")), "{errors:?}");

    // Events, also joined (output printed in pieces), as admin and anonymously.
    for (id, watched) in [(check, &check_log), (broken_check, &broken_check_log), (build, &watched)] {
        assert_no_secret(&format!("the log of build {id}"), &watched.log());
        for event in &watched.events {
            assert_no_secret(&format!("an event of build {id}"), &event.to_string());
        }
        assert_no_secret(
            &format!("build {id}'s events"),
            &server.body(&format!("/api/v1/builds/{id}/events"), Some(&token)).await,
        );
    }
    let anonymous = server.get(&format!("/api/v1/builds/{build}/events"), None).await;
    assert_eq!(anonymous.status(), 200, "a public job's events are anyone's");
    assert_no_secret("the events anyone reads", &anonymous.text().await.unwrap());

    // Every answer about the build and what it used or made.
    let versions = server.get_json("/api/v1/teams/main/pipelines/leaky/resources/echoed/versions", Some(&token)).await;
    let pushed =
        versions.as_array().unwrap().iter().find(|v| v["version"]["ref"] == "pushed").expect("the put's version");
    assert_eq!(pushed["metadata"][0]["value"], "((redacted))", "{pushed}");
    let resource = "/api/v1/teams/main/pipelines/leaky/resources/echoed";
    let mut paths: Vec<String> = [
        format!("/api/v1/builds/{build}"),
        format!("/api/v1/builds/{build}/plan"),
        format!("/api/v1/builds/{build}/resources"),
        format!("/api/v1/builds/{check}/plan"),
        "/api/v1/builds".into(),
        "/api/v1/teams/main/builds".into(),
        "/api/v1/jobs".into(),
        "/api/v1/resources".into(),
        "/api/v1/teams/main/pipelines/leaky/builds".into(),
        "/api/v1/teams/main/pipelines/leaky/jobs".into(),
        "/api/v1/teams/main/pipelines/leaky/jobs/leaky".into(),
        "/api/v1/teams/main/pipelines/leaky/jobs/leaky/builds".into(),
        "/api/v1/teams/main/pipelines/leaky/jobs/leaky/builds/1".into(),
        "/api/v1/teams/main/pipelines/leaky/resources".into(),
        "/api/v1/teams/main/pipelines/leaky/resources/broken-check".into(),
        resource.into(),
        format!("{resource}/versions"),
    ]
    .into();
    for version in versions.as_array().unwrap() {
        let id = &version["id"];
        paths.extend([
            format!("{resource}/versions/{id}"),
            format!("{resource}/versions/{id}/input_to"),
            format!("{resource}/versions/{id}/output_of"),
        ]);
    }
    for path in &paths {
        for caller in [Some(token.as_str()), None] {
            assert_no_secret(&format!("GET {path}"), &server.body(path, caller).await);
        }
    }

    // What the database holds, read around atc.
    let raw = &server.test_db;
    let events = raw.strings("SELECT payload FROM build_events").await;
    assert!(events.iter().any(|payload| payload.contains("((redacted))")), "{events:?}");
    for payload in &events {
        assert_no_secret("a build_events row", payload);
    }
    for text in raw.strings("SELECT version || ' ' || metadata FROM resource_versions").await {
        assert_no_secret("a resource_versions row", &text);
    }
    let check_errors = raw.strings("SELECT check_error FROM resources WHERE check_error IS NOT NULL").await;
    assert!(!check_errors.is_empty(), "the broken check's error is recorded");
    for text in &check_errors {
        assert_no_secret("a resources row's check_error", text);
    }
    server.stop().await;
}

on_both_backends!(secrets_never_leave_a_build);

/// `--enable-redact-secrets=false`: the operator asked to see them.
async fn secrets_show_in_the_output_when_redaction_is_off(backend: Backend) {
    for (redact, shown) in [(true, "((redacted))\n"), (false, "hello from creds\n")] {
        let (runtime, _work) = crate::support::local_runtime().await;
        let mut options = server_options_with(runtime, &[]);
        options.redact_secrets = redact;
        let server = TestServer::start_with(backend, options).await;
        let token = server.admin_token().await;
        let pipeline = "jobs:\n- name: j\n  plan:\n  - task: t\n    config:\n      platform: linux\n      run: {path: echo, args: [((greeting))]}\n";
        server.set_and_unpause(&token, "shown", pipeline).await;
        let (_, watched) = server.trigger_and_watch(&token, "shown", "j").await;
        assert_eq!((watched.status().as_str(), watched.log().as_str()), ("succeeded", shown), "redact: {redact}");
        server.stop().await;
    }
}

on_both_backends!(secrets_show_in_the_output_when_redaction_is_off);
