//! One-off builds as `fly execute` runs them: upload, run, watch, download.

use std::time::Duration;

use atc::component::Component;
use atc::gc::Collector;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer, tgz};

fn task(name: &str, script: &str) -> Value {
    json!({ "task": {
        "name": name,
        "config": {
            "platform": "linux",
            "inputs": [{ "name": "src", "optional": true }],
            "outputs": [{ "name": "out" }],
            "params": { "GREETING": "((greeting))" },
            "run": { "path": "sh", "args": ["-c", script] }
        }
    }})
}

fn step(id: &str, body: Value) -> Value {
    let mut plan = body;
    plan["id"] = json!(id);
    plan
}

async fn execute_uploads_runs_and_hands_back_outputs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let upload = server
        .request(reqwest::Method::POST, "/api/v1/teams/main/artifacts", Some(&token))
        .body(tgz(&[("hello.txt", "hello from the upload\n")]))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let artifact: Value = upload.json().await.unwrap();

    let plan = json!({ "id": "1", "do": [
        { "id": "2", "artifact_input": { "artifact_id": artifact["id"], "name": "src" } },
        step("3", task("greet", "cat src/hello.txt; echo \"$GREETING\"; echo to-stderr >&2; echo result > out/result.txt")),
        { "id": "4", "artifact_output": { "name": "out" } }
    ]});
    let id = server.execute(&token, &plan).await;
    let watched = server.watch(&token, id).await;
    assert_eq!(watched.status(), "succeeded", "{:?}", watched.events);
    let log = watched.log();
    assert!(log.contains("hello from the upload"), "{log}");
    assert!(log.contains("((redacted))") && !log.contains("hello from creds"), "secrets stay out of logs: {log}");
    let stderr = watched
        .of_type("log")
        .into_iter()
        .any(|e| e["data"]["origin"]["source"] == "stderr" && e["data"]["payload"] == "to-stderr\n");
    assert!(stderr, "stderr keeps its source");
    assert_eq!(watched.of_type("finish-task")[0]["data"]["exit_status"], 0);
    assert_eq!(watched.of_type("start-task")[0]["data"]["origin"]["id"], "3");

    let artifacts = server.get_json(&format!("/api/v1/builds/{id}/artifacts"), Some(&token)).await;
    assert_eq!(artifacts[0]["name"], "out");
    let download = server.get(&format!("/api/v1/teams/main/artifacts/{}", artifacts[0]["id"]), Some(&token)).await;
    assert_eq!(download.status(), 200);
    let bytes = download.bytes().await.unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let names: Vec<String> =
        archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    assert!(names.iter().any(|n| n.ends_with("result.txt")), "{names:?}");

    let build = server.get_json(&format!("/api/v1/builds/{id}"), Some(&token)).await;
    assert_eq!(build["status"], "succeeded");
    assert_eq!(build["name"], id.to_string());
    assert!(build["start_time"].as_i64().unwrap() > 0 && build["end_time"].as_i64().unwrap() > 0);
    let plan = server.get_json(&format!("/api/v1/builds/{id}/plan"), Some(&token)).await;
    assert_eq!(plan["schema"], "exec.v2");
    assert_eq!(plan["plan"]["do"][1]["task"]["name"], "greet");

    // The upload and the handed-back output stay for `fly execute` to
    // fetch, until they expire; nothing else of the build stays.
    server.wait_for_artifact_count(2).await;
    let collector = Collector::new(server.engine.db.clone(), server.runtime.clone(), Duration::ZERO);
    collector.tick().await.unwrap();
    server.wait_for_artifact_count(0).await;
    let expired = server.get(&format!("/api/v1/teams/main/artifacts/{}", artifacts[0]["id"]), Some(&token)).await;
    assert_eq!(expired.status(), 404);
    server.stop().await;
}

async fn failures_errors_hooks_and_timeouts_end_builds_as_concourse_does(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let run = |plan: Value| {
        let server = &server;
        let token = token.clone();
        async move {
            let id = server.execute(&token, &plan).await;
            server.watch(&token, id).await
        }
    };

    let failed = run(step("1", task("fail", "echo failing; exit 3"))).await;
    assert_eq!(failed.status(), "failed");
    assert_eq!(failed.of_type("finish-task")[0]["data"]["exit_status"], 3);

    let hooked = run(json!({ "id": "1", "ensure": {
        "step": { "id": "2", "on_failure": {
            "step": step("3", task("main", "echo main; exit 1")),
            "on_failure": step("4", task("on-failure", "echo hook-on-failure"))
        }},
        "ensure": step("5", task("ensure", "echo hook-ensure"))
    }}))
    .await;
    assert_eq!(hooked.status(), "failed");
    let log = hooked.log();
    let order: Vec<usize> = ["main", "hook-on-failure", "hook-ensure"].iter().map(|m| log.find(m).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{log}");

    let tried = run(json!({ "id": "1", "try": { "step": step("2", task("flaky", "exit 1")) } })).await;
    assert_eq!(tried.status(), "succeeded");

    let timed_out =
        run(json!({ "id": "1", "timeout": { "duration": "1s", "step": step("2", task("slow", "sleep 30")) } })).await;
    assert_eq!(timed_out.status(), "failed");
    assert!(timed_out.of_type("error")[0]["data"]["message"].as_str().unwrap().contains("timeout"));

    let retried = run(json!({ "id": "1", "retry": [
        step("2", task("first", "echo attempt-1; exit 1")),
        step("3", task("second", "echo attempt-2"))
    ]}))
    .await;
    assert_eq!(retried.status(), "succeeded");
    assert!(retried.log().contains("attempt-1") && retried.log().contains("attempt-2"));

    let errored = run(json!({ "id": "1", "task": { "name": "no-config" } })).await;
    assert_eq!(errored.status(), "errored");
    assert!(errored.of_type("error")[0]["data"]["message"].as_str().unwrap().contains("file"));

    let missing_input = run(step(
        "1",
        json!({ "task": { "name": "t", "config": {
            "platform": "linux", "inputs": [{ "name": "nowhere" }], "run": { "path": "true" }
        }}}),
    ))
    .await;
    assert_eq!(missing_input.status(), "errored");
    assert!(missing_input.log().is_empty());
    assert!(missing_input.of_type("error")[0]["data"]["message"].as_str().unwrap().contains("missing inputs: nowhere"));

    let undefined = run(step("1", task("vars", "echo ((nope))"))).await;
    assert_eq!(undefined.status(), "errored");
    assert!(undefined.of_type("error")[0]["data"]["message"].as_str().unwrap().contains("nope"));
    server.stop().await;
}

async fn aborting_a_running_build_stops_it_and_runs_its_abort_hooks(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let plan = json!({ "id": "1", "on_abort": {
        "step": step("2", task("long", "echo started; sleep 60")),
        "on_abort": step("3", task("cleanup", "echo hook-on-abort"))
    }});
    let id = server.execute(&token, &plan).await;
    // Abort once the task is running.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let events = server.test_db.db.build_events(id, 0, 1000).await.unwrap();
        if events.iter().any(|e| e.payload.contains("started")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the task never started");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let abort =
        server.request(reqwest::Method::PUT, &format!("/api/v1/builds/{id}/abort"), Some(&token)).send().await.unwrap();
    assert_eq!(abort.status(), 200);
    let watched = server.watch(&token, id).await;
    assert_eq!(watched.status(), "aborted");
    assert!(watched.log().contains("hook-on-abort"), "{}", watched.log());
    server.stop().await;
}

on_both_backends!(
    execute_uploads_runs_and_hands_back_outputs,
    failures_errors_hooks_and_timeouts_end_builds_as_concourse_does,
    aborting_a_running_build_stops_it_and_runs_its_abort_hooks,
);
