//! One trace per build: from the API call that triggered it down to every
//! step, hook and process, exported by the real binary.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::atc_process::Atc;
use crate::otlp_receiver::{OtlpReceiver, ReceivedSpan};
use crate::{FAST_EXPORT, SERVER_KIND, WAIT, random_hex};

/// OTLP's numbering of span kinds.
const CLIENT_KIND: i32 = 3;

const PIPELINE: &str = r#"
resources:
- name: r
  type: mock
  source: {initial_version: v1}
jobs:
- name: passing
  plan:
  - get: r
  - task: show
    params: {GREETING: ((greeting))}
    config:
      platform: linux
      run: {path: sh, args: [-c, 'echo "tp=$TRACEPARENT"']}
    ensure:
      task: cleanup
      config: {platform: linux, run: {path: echo, args: [cleaning up]}}
    on_failure:
      task: report
      config: {platform: linux, run: {path: echo, args: [reporting]}}
  - in_parallel:
    - task: left
      config: {platform: linux, run: {path: echo, args: [left]}}
    - task: right
      config: {platform: linux, run: {path: echo, args: [right]}}
  - put: r
    params: {version: v2}
- name: failing
  plan:
  - task: show
    config: {platform: linux, run: {path: sh, args: [-c, 'exit 3']}}
    ensure:
      task: cleanup
      config: {platform: linux, run: {path: echo, args: [cleaning up]}}
    on_failure:
      task: report
      config: {platform: linux, run: {path: echo, args: [reporting]}}
"#;

pub(crate) struct Client {
    pub(crate) url: String,
    pub(crate) token: String,
    pub(crate) http: reqwest::Client,
}

impl Client {
    pub(crate) async fn login(atc: &Atc) -> Client {
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!("{}/sky/issuer/token", atc.url))
            .basic_auth("fly", Some("Zmx5"))
            .form(&[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", &atc.password),
                ("scope", "openid"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["access_token"].as_str().expect("a token").to_string();
        Client { url: atc.url.clone(), token, http }
    }

    pub(crate) async fn set_and_unpause(&self, name: &str, yaml: &str) {
        let pipeline = format!("{}/api/v1/teams/main/pipelines/{name}", self.url);
        let put = self.http.put(format!("{pipeline}/config")).bearer_auth(&self.token);
        let put = put.header("Content-Type", "application/x-yaml").body(yaml.to_string()).send().await.unwrap();
        assert_eq!(put.status(), 201, "{}", put.text().await.unwrap());
        let unpause = self.http.put(format!("{pipeline}/unpause")).bearer_auth(&self.token).send().await.unwrap();
        assert_eq!(unpause.status(), 200);
    }

    /// `fly trigger-job` with a `traceparent`; waits for the build to end
    /// and returns it with its events as text.
    pub(crate) async fn trigger(&self, pipeline: &str, job: &str, traceparent: &str) -> (Value, String) {
        let path = format!("{}/api/v1/teams/main/pipelines/{pipeline}/jobs/{job}/builds", self.url);
        let response =
            self.http.post(path).bearer_auth(&self.token).header("traceparent", traceparent).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let build: Value = response.json().await.unwrap();
        let url = format!("{}/api/v1/builds/{}", self.url, build["id"]);
        let deadline = Instant::now() + WAIT;
        loop {
            let build: Value = self.http.get(&url).bearer_auth(&self.token).send().await.unwrap().json().await.unwrap();
            if !matches!(build["status"].as_str(), Some("pending" | "started")) {
                let events = self.http.get(format!("{url}/events")).bearer_auth(&self.token).send().await.unwrap();
                return (build, events.text().await.unwrap());
            }
            assert!(Instant::now() < deadline, "build {} did not finish", build["id"]);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The spans of one trace by name (a name used twice keeps every span).
struct Trace(Vec<ReceivedSpan>);

impl Trace {
    fn named(&self, name: &str) -> Vec<&ReceivedSpan> {
        self.0.iter().filter(|s| s.name == name).collect()
    }

    fn one(&self, name: &str) -> &ReceivedSpan {
        let found = self.named(name);
        assert_eq!(found.len(), 1, "expected one span '{name}' in {:?}", self.names());
        found[0]
    }

    fn names(&self) -> Vec<&str> {
        self.0.iter().map(|s| s.name.as_str()).collect()
    }

    /// Names of the children of `parent`, sorted.
    fn children(&self, parent: &ReceivedSpan) -> Vec<&str> {
        let mut names: Vec<&str> =
            self.0.iter().filter(|s| s.parent_span_id == parent.span_id).map(|s| s.name.as_str()).collect();
        names.sort();
        names
    }
}

/// Waits for the build's span (it ends last), then takes the whole trace.
async fn trace_of_build(receiver: &OtlpReceiver, trace_id: &str, build_span: &str) -> Trace {
    receiver.wait_for_span(WAIT, |s| s.trace_id == trace_id && s.name == build_span).await;
    Trace(receiver.spans().into_iter().filter(|s| s.trace_id == trace_id).collect())
}

fn event_names(span: &ReceivedSpan) -> Vec<&str> {
    span.events.iter().map(|(name, _)| name.as_str()).collect()
}

fn event<'a>(span: &'a ReceivedSpan, name: &str) -> &'a HashMap<String, String> {
    &span.events.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{} has no {name} event", span.name)).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triggered_build_is_one_trace_from_the_api_call_to_every_step() {
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    let args = ["--tracing-otlp-address", &address, "--dummy-creds-var", "greeting:psst"];
    let atc = Atc::quickstart(&args, &[FAST_EXPORT]);
    let client = Client::login(&atc).await;
    client.set_and_unpause("traced", PIPELINE).await;

    let (trace_id, caller) = (random_hex(16), random_hex(8));
    let (build, events) = client.trigger("traced", "passing", &format!("00-{trace_id}-{caller}-01")).await;
    assert_eq!(build["status"], "succeeded", "{events}");
    let trace = trace_of_build(&receiver, &trace_id, "build traced/passing").await;

    let api = trace.one("POST /api/v1/teams/{team_name}/pipelines/{pipeline_name}/jobs/{job_name}/builds");
    assert_eq!(api.parent_span_id, caller);
    let root = trace.one("build traced/passing");
    assert_eq!(root.parent_span_id, api.span_id, "the build is the child of the request that triggered it");
    let create = trace.one("db.build.create");
    assert_eq!(create.parent_span_id, api.span_id);
    assert_eq!(create.kind, CLIENT_KIND);
    assert_eq!(create.attributes["db.system.name"], "sqlite");
    assert_eq!(create.attributes["db.collection.name"], "builds");
    assert_eq!(root.kind, SERVER_KIND);
    let attribute = |span: &ReceivedSpan, key: &str| span.attributes.get(key).cloned().unwrap_or_default();
    assert_eq!(attribute(root, "cicd.pipeline.name"), "traced/passing");
    assert_eq!(attribute(root, "cicd.pipeline.run.id"), build["id"].to_string());
    assert_eq!(attribute(root, "cicd.pipeline.result"), "success");
    assert_eq!(attribute(root, "cicd.pipeline.action.name"), "BUILD");
    assert_eq!(attribute(root, "concourse.team.name"), "main");
    assert_eq!(attribute(root, "concourse.job.name"), "passing");
    assert_eq!(attribute(root, "concourse.build.name"), "1");
    assert!(
        attribute(root, "cicd.pipeline.run.url.full").ends_with("/teams/main/pipelines/traced/jobs/passing/builds/1")
    );

    // Every step sits under the build; the hook that ran holds its own step.
    assert_eq!(
        trace.children(root),
        ["get r", "get r", "hook ensure", "put r", "task left", "task right", "task show"],
        "{:?}",
        trace.names()
    );
    assert!(trace.named("hook on_failure").is_empty(), "a hook that did not run has no span");
    let ensure = trace.one("hook ensure");
    assert_eq!(attribute(ensure, "concourse.hook.type"), "ensure");
    assert_eq!(trace.children(ensure), ["task cleanup"]);

    let show = trace.one("task show");
    assert_eq!(event_names(show), ["step.initializing", "step.starting", "step.placed", "step.finished"]);
    assert!(!event(show, "step.placed")["cicd.worker.name"].is_empty());
    assert_eq!(event(show, "step.finished")["exit_status"], "0");
    assert_eq!(attribute(show, "cicd.pipeline.task.name"), "show");
    assert_eq!(attribute(show, "cicd.pipeline.task.run.result"), "success");
    assert_eq!(attribute(show, "concourse.step.type"), "task");
    let put = trace.one("put r");
    assert_eq!(attribute(put, "concourse.resource.name"), "r");
    assert_eq!(
        event_names(put),
        ["step.initializing", "step.starting", "step.image_ready", "step.placed", "step.finished"]
    );
    assert!(event(put, "step.image_ready")["container.image.name"].starts_with("resource type "));
    assert_eq!(trace.children(put), ["db.resource_versions.save", "runtime.process"]);

    // The process under the task's span, as the local runtime saw it, and
    // the credential it needed (named, never its value).
    assert_eq!(trace.children(show), ["creds.lookup", "runtime.process"]);
    let lookup = trace.one("creds.lookup");
    assert_eq!(attribute(lookup, "concourse.creds.manager"), "dummy");
    assert_eq!(attribute(lookup, "concourse.secret.path"), "greeting");
    assert_eq!(attribute(lookup, "concourse.secret.found"), "true");
    assert!(!format!("{lookup:?}").contains("psst"), "the value never reaches a span");
    let process = trace.0.iter().find(|s| s.name == "runtime.process" && s.parent_span_id == show.span_id).unwrap();
    assert_eq!(attribute(process, "process.command"), "sh");
    assert_eq!(attribute(process, "process.exit.code"), "0");
    assert!(attribute(process, "process.pid").parse::<u32>().is_ok());

    // The task's process saw its own step span as TRACEPARENT.
    assert!(events.contains(&format!("tp=00-{trace_id}-{}-01", show.span_id)), "{events}");

    // A failing run: the failure hook's span, the failure on the build.
    let (failing_trace, caller) = (random_hex(16), random_hex(8));
    let (build, events) = client.trigger("traced", "failing", &format!("00-{failing_trace}-{caller}-01")).await;
    assert_eq!(build["status"], "failed", "{events}");
    let trace = trace_of_build(&receiver, &failing_trace, "build traced/failing").await;
    let root = trace.one("build traced/failing");
    assert_eq!(attribute(root, "cicd.pipeline.result"), "failure");
    assert_eq!(attribute(root, "error.type"), "failure");
    assert_eq!(trace.children(root), ["hook ensure", "hook on_failure", "task show"]);
    assert_eq!(trace.children(trace.one("hook on_failure")), ["task report"]);
    let show = trace.one("task show");
    assert_eq!(event(show, "step.finished")["exit_status"], "3");
    assert_eq!(attribute(show, "cicd.pipeline.task.run.result"), "failure");

    // A rerun is its own trace (its request's), linked to the build it repeats.
    let (rerun_trace, caller) = (random_hex(16), random_hex(8));
    let rerun = client
        .http
        .post(format!("{}/api/v1/teams/main/pipelines/traced/jobs/failing/builds/1", client.url))
        .bearer_auth(&client.token)
        .header("traceparent", format!("00-{rerun_trace}-{caller}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(rerun.status(), 200);
    let repeated =
        receiver.wait_for_span(WAIT, |s| s.trace_id == rerun_trace && s.name == "build traced/failing").await;
    assert_eq!(repeated.links, [(root.trace_id.clone(), root.span_id.clone())]);
    atc.terminate();
}

/// A build the scheduler triggers is a root, linked to the check that
/// found its version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_build_links_to_the_check_that_found_its_version() {
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    let atc = Atc::quickstart(&["--tracing-otlp-address", &address], &[FAST_EXPORT]);
    let client = Client::login(&atc).await;
    let pipeline = "resources:\n- name: r\n  type: mock\n  webhook_token: tok\n  source: {initial_version: v1}\njobs:\n- name: auto\n  plan:\n  - get: r\n    trigger: true\n";
    client.set_and_unpause("scheduled", pipeline).await;

    let build = receiver.wait_for_span(WAIT, |s| s.name == "build scheduled/auto").await;
    assert!(build.parent_span_id.is_empty(), "a scheduled build starts its own trace");
    let check = receiver.wait_for_span(WAIT, |s| s.name == "check r").await;
    assert_eq!(check.attributes["concourse.resource.name"], "r");
    assert_eq!(check.attributes["concourse.resource.type"], "mock");
    let saved = receiver
        .wait_for_span(WAIT, |s| s.name == "db.resource_versions.save" && s.parent_span_id == check.span_id)
        .await;
    assert_eq!(saved.attributes["db.operation.name"], "INSERT");
    assert_eq!(build.links, [(check.trace_id.clone(), check.span_id.clone())]);
    let get = receiver.wait_for_span(WAIT, |s| s.name == "get r" && s.trace_id == build.trace_id).await;
    assert_eq!(get.parent_span_id, build.span_id);

    // The components say when they did something, and only then.
    let scan = receiver.wait_for_span(WAIT, |s| s.name == "lidar.scan").await;
    assert!(scan.parent_span_id.is_empty());
    let scheduled = receiver.wait_for_span(WAIT, |s| s.name == "scheduler.schedule_job").await;
    assert_eq!(scheduled.attributes["concourse.job.name"], "auto");
    let resolved = receiver.wait_for_span(WAIT, |s| s.name == "db.job_inputs.resolve").await;
    assert_eq!(resolved.parent_span_id, scheduled.span_id);
    assert_eq!(resolved.kind, CLIENT_KIND);
    assert_eq!(resolved.attributes["db.system.name"], "sqlite");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let passes = receiver.spans().iter().filter(|s| s.name == "scheduler.schedule_job").count();
    assert_eq!(passes, 1, "idle scheduling passes leave no spans");

    // A webhook's check is part of the webhook request's trace.
    let (trace_id, caller) = (random_hex(16), random_hex(8));
    let webhook =
        format!("{}/api/v1/teams/main/pipelines/scheduled/resources/r/check/webhook?webhook_token=tok", client.url);
    let response =
        client.http.post(webhook).header("traceparent", format!("00-{trace_id}-{caller}-01")).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let request = receiver.wait_for_span(WAIT, |s| s.trace_id == trace_id && s.name.starts_with("POST")).await;
    let check = receiver.wait_for_span(WAIT, |s| s.trace_id == trace_id && s.name == "check r").await;
    assert_eq!(check.parent_span_id, request.span_id);
    atc.terminate();
}

/// From a slow build on a dashboard to its trace: Prometheus keeps the
/// build's trace id as the exemplar of its duration, and counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_keeps_the_builds_trace_as_the_exemplar_of_its_duration() {
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    let atc = Atc::quickstart(&["--tracing-otlp-address", &address], &[FAST_EXPORT]);
    let client = Client::login(&atc).await;
    client.set_and_unpause("measured", PIPELINE).await;
    let trace_id = random_hex(16);
    let (build, _) = client.trigger("measured", "failing", &format!("00-{trace_id}-{}-01", random_hex(8))).await;
    assert_eq!(build["status"], "failed");

    let classic = atc.scrape().await;
    let finished =
        "concourse_builds_finished_total{team=\"main\",pipeline=\"measured\",job=\"failing\",status=\"failed\"} 1";
    assert!(classic.contains(finished), "{classic}");
    assert!(classic.contains("concourse_steps_duration_seconds_count{type=\"task\"}"), "{classic}");
    // Steps waited (while preparing) and no longer do.
    assert!(classic.contains("concourse_steps_waiting{type=\"task\"} 0"), "{classic}");

    let target = atc.metrics_url.trim_start_matches("http://").trim_end_matches("/metrics").to_string();
    let prometheus = crate::prometheus::Prometheus::scraping(&target).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ids = prometheus.exemplar_trace_ids("concourse_builds_duration_seconds_bucket").await;
        if ids.contains(&trace_id) {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus has no build exemplar with trace {trace_id}; it has {ids:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    atc.terminate();
}

/// Aborting a build: its abort and ensure hooks still run inside its
/// trace, under the build, never as roots of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_builds_hooks_stay_in_its_trace() {
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    let atc = Atc::quickstart(&["--tracing-otlp-address", &address], &[FAST_EXPORT]);
    let client = Client::login(&atc).await;
    let pipeline = r#"
jobs:
- name: long
  plan:
  - task: wait
    config: {platform: linux, run: {path: sleep, args: ["30"]}}
    on_abort:
      task: tidy
      config: {platform: linux, run: {path: echo, args: [tidying]}}
    ensure:
      task: always
      config: {platform: linux, run: {path: echo, args: [always]}}
"#;
    client.set_and_unpause("aborting", pipeline).await;
    let trace_id = random_hex(16);
    let path = format!("{}/api/v1/teams/main/pipelines/aborting/jobs/long/builds", client.url);
    let traceparent = format!("00-{trace_id}-{}-01", random_hex(8));
    let response =
        client.http.post(path).bearer_auth(&client.token).header("traceparent", traceparent).send().await.unwrap();
    let build: Value = response.json().await.unwrap();
    // Abort once the task runs.
    let url = format!("{}/api/v1/builds/{}", client.url, build["id"]);
    let events = client.http.get(format!("{url}/events")).bearer_auth(&client.token).send().await.unwrap();
    let mut stream = events.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("start-task") {
        let chunk = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut stream)).await;
        let Ok(Some(Ok(chunk))) = chunk else { panic!("the task never started: {seen}") };
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let abort = client.http.put(format!("{url}/abort")).bearer_auth(&client.token).send().await.unwrap();
    assert_eq!(abort.status(), 200);

    let trace = trace_of_build(&receiver, &trace_id, "build aborting/long").await;
    let root = trace.one("build aborting/long");
    assert_eq!(root.attributes["cicd.pipeline.result"], "cancellation");
    assert_eq!(trace.children(root), ["hook ensure", "hook on_abort", "task wait"]);
    assert_eq!(trace.children(trace.one("hook on_abort")), ["task tidy"]);
    assert_eq!(trace.children(trace.one("hook ensure")), ["task always"]);
    assert_eq!(trace.one("task wait").attributes["cicd.pipeline.task.run.result"], "cancellation");
    atc.terminate();
}

/// A build aborted before it ran is counted and traced like any build that
/// ends: its span (under the trigger's request) says `cancellation`, and
/// Concourse's finished-builds series counts it `aborted`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_ended_before_it_ran_is_still_counted_and_traced() {
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    let atc = Atc::quickstart(&["--tracing-otlp-address", &address], &[FAST_EXPORT]);
    let client = Client::login(&atc).await;
    let pipeline =
        "jobs:\n- name: held\n  plan:\n  - task: never\n    config: {platform: linux, run: {path: 'true'}}\n";
    client.set_and_unpause("held", pipeline).await;
    // Paused again, the job's build stays pending until it is aborted.
    let job = format!("{}/api/v1/teams/main/pipelines/held/jobs/held", client.url);
    let pause = client.http.put(format!("{job}/pause")).bearer_auth(&client.token).send().await.unwrap();
    assert_eq!(pause.status(), 200);
    let trace_id = random_hex(16);
    let traceparent = format!("00-{trace_id}-{}-01", random_hex(8));
    let response =
        client.http.post(format!("{job}/builds")).bearer_auth(&client.token).header("traceparent", traceparent);
    let build: Value = response.send().await.unwrap().json().await.unwrap();
    assert_eq!(build["status"], "pending");
    let url = format!("{}/api/v1/builds/{}", client.url, build["id"]);
    let abort = client.http.put(format!("{url}/abort")).bearer_auth(&client.token).send().await.unwrap();
    assert_eq!(abort.status(), 200);

    let ended = receiver.wait_for_span(WAIT, |s| s.trace_id == trace_id && s.name == "build held/held").await;
    assert_eq!(ended.attributes["cicd.pipeline.result"], "cancellation");
    assert_eq!(ended.attributes["cicd.pipeline.run.id"], build["id"].to_string());
    let series = r#"concourse_builds_finished_total{team="main",pipeline="held",job="held",status="aborted"}"#;
    assert_eq!(atc.sample(series).await, 1.0, "{}", atc.scrape().await);
    atc.terminate();
}

/// atc dies during a long task; the build it was running carries on once
/// atc is back, and ends in its own trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_resumed_after_a_crash_ends_in_its_own_trace() {
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    let data_dir = tempfile::tempdir().unwrap();
    let args = ["--tracing-otlp-address", address.as_str()];
    let first = Atc::quickstart_in(data_dir.path(), &args, &[FAST_EXPORT]);
    let client = Client::login(&first).await;
    let pipeline = "jobs:\n- name: long\n  plan:\n  - task: wait\n    config: {platform: linux, run: {path: sleep, args: ['3']}}\n";
    client.set_and_unpause("crashing", pipeline).await;
    let trace_id = random_hex(16);
    let path = format!("{}/api/v1/teams/main/pipelines/crashing/jobs/long/builds", client.url);
    let traceparent = format!("00-{trace_id}-{}-01", random_hex(8));
    let response =
        client.http.post(path).bearer_auth(&client.token).header("traceparent", traceparent).send().await.unwrap();
    let build: Value = response.json().await.unwrap();
    let events = client.http.get(format!("{}/api/v1/builds/{}/events", client.url, build["id"]));
    let mut stream = events.bearer_auth(&client.token).send().await.unwrap().bytes_stream();
    let mut seen = String::new();
    while !seen.contains("start-task") {
        let chunk = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut stream)).await;
        let Ok(Some(Ok(chunk))) = chunk else { panic!("the task never started: {seen}") };
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    first.kill();

    let second = Atc::quickstart_in(data_dir.path(), &args, &[FAST_EXPORT]);
    let ended = receiver.wait_for_span(WAIT, |s| s.trace_id == trace_id && s.name == "build crashing/long").await;
    assert_eq!(ended.attributes["cicd.pipeline.result"], "success");
    assert_eq!(ended.attributes["cicd.pipeline.run.id"], build["id"].to_string());
    second.terminate();
}

/// The CI/CD instruments over OTLP: the run's duration and result, its
/// steps' durations, and the workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_metrics_arrive_over_otlp() {
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    let atc = Atc::quickstart(&["--metrics-otlp-address", &address, "--metrics-otlp-interval", "500ms"], &[]);
    let client = Client::login(&atc).await;
    client.set_and_unpause("counted", PIPELINE).await;
    let (build, _) = client.trigger("counted", "failing", &format!("00-{}-{}-01", random_hex(16), random_hex(8))).await;
    assert_eq!(build["status"], "failed");

    let run = receiver
        .wait_for_metric(WAIT, |m| {
            m.name == "cicd.pipeline.run.duration"
                && m.point_attributes
                    .iter()
                    .any(|p| p.get("cicd.pipeline.name").map(String::as_str) == Some("counted/failing"))
        })
        .await;
    let point = run.point_attributes.iter().find(|p| p["cicd.pipeline.name"] == "counted/failing").unwrap();
    assert_eq!(point["cicd.pipeline.result"], "failure");
    let steps = receiver.wait_for_metric(WAIT, |m| m.name == "concourse.step.duration").await;
    assert!(steps.point_attributes.iter().any(|p| p["concourse.step.type"] == "task"), "{steps:?}");
    let workers = receiver.wait_for_metric(WAIT, |m| m.name == "cicd.worker.count").await;
    assert!(workers.point_attributes.iter().any(|p| p["cicd.worker.state"] == "available"), "{workers:?}");
    atc.terminate();
}
