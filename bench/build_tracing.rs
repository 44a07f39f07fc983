//! What tracing every build costs: throughput of 500 trivial builds with
//! tracing off and with `always` exporting every span to an OTLP receiver
//! in this process, each on a real `atc quickstart` (SQLite, local
//! runtime). Rounds alternate between the two so other load on the machine
//! hits both alike; the best round of each counts.
//!
//!   cargo bench --bench build_tracing
//!
//! (`cargo test` builds bench targets and runs them without `--bench`; then
//! this does nothing.)

#[path = "../tests/telemetry/atc_process.rs"]
#[allow(dead_code)]
mod atc_process;
#[path = "../tests/telemetry/otlp_receiver.rs"]
#[allow(dead_code)]
mod otlp_receiver;

use std::time::{Duration, Instant};

use atc_process::Atc;
use otlp_receiver::OtlpReceiver;
use serde_json::Value;

const BUILDS: usize = 500;
const JOBS: usize = 10;
const ROUNDS: usize = 3;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let receiver = OtlpReceiver::start().await;
        let address = receiver.grpc_addr.to_string();
        let (mut off, mut always) = (0f64, 0f64);
        for round in 1..=ROUNDS {
            let untraced = builds_per_second(&[]).await;
            let traced = builds_per_second(&["--tracing-otlp-address", &address]).await;
            println!("round {round}: off {untraced:.1} builds/s, always {traced:.1} builds/s");
            off = off.max(untraced);
            always = always.max(traced);
        }
        let spans = receiver.spans().len();
        println!("{BUILDS} builds over {JOBS} jobs, best of {ROUNDS} rounds:");
        println!("  tracing off:     {off:.1} builds/s");
        println!("  always (export): {always:.1} builds/s ({spans} spans received)");
        println!("  cost of always-on: {:.1}% (goal: at most 5%)", (1.0 - always / off) * 100.0);
    });
}

/// Starts atc with `args`, runs the builds from one client per job, and
/// returns builds per second from the first trigger to the last build's end.
async fn builds_per_second(args: &[&str]) -> f64 {
    let atc = Atc::quickstart(args, &[("OTEL_BSP_MAX_QUEUE_SIZE", "100000")]);
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/sky/issuer/token", atc.url))
        .basic_auth("fly", Some("Zmx5"))
        .form(&[("grant_type", "password"), ("username", "admin"), ("password", &atc.password), ("scope", "openid")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let mut yaml = String::from("jobs:\n");
    for job in 0..JOBS {
        yaml.push_str(&format!(
            "- name: job-{job}\n  plan:\n  - task: hi\n    config: {{platform: linux, run: {{path: echo, args: [hi]}}}}\n"
        ));
    }
    let pipeline = format!("{}/api/v1/teams/main/pipelines/bench", atc.url);
    let put = http.put(format!("{pipeline}/config")).bearer_auth(&token).header("Content-Type", "application/x-yaml");
    assert_eq!(put.body(yaml).send().await.unwrap().status(), 201);
    http.put(format!("{pipeline}/unpause")).bearer_auth(&token).send().await.unwrap();

    let started = Instant::now();
    let clients: Vec<_> = (0..JOBS)
        .map(|job| {
            let (http, token, url) = (http.clone(), token.clone(), format!("{pipeline}/jobs/job-{job}/builds"));
            tokio::spawn(async move {
                for _ in 0..BUILDS / JOBS {
                    let response = http.post(&url).bearer_auth(&token).send().await.unwrap();
                    assert_eq!(response.status(), 200);
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut finished = 0;
        for job in 0..JOBS {
            let url = format!("{pipeline}/jobs/job-{job}/builds?limit={}", BUILDS / JOBS);
            let builds: Value = http.get(url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
            finished += builds.as_array().unwrap().iter().filter(|b| b["status"] == "succeeded").count();
        }
        if finished == BUILDS {
            break;
        }
        assert!(Instant::now() < deadline, "only {finished} of {BUILDS} builds finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = BUILDS as f64 / started.elapsed().as_secs_f64();
    atc.terminate();
    rate
}
