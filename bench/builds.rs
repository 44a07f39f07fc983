//! What running builds costs atc itself, measured against a real server on
//! the local runtime (the test harness's), each figure from one run:
//!
//! - trigger-to-first-log-line latency of a trivial task (`echo hi`): the
//!   time from `POST J/builds` until its event stream delivers the first
//!   `log` event, over 200 builds, next to the bare cost of spawning `echo
//!   hi` and reading its line; the difference is atc's own share;
//! - throughput: 1,000 trivial builds across 50 serial jobs, triggered by
//!   50 clients at once, on SQLite and on PostgreSQL;
//! - fan-out: 100 watchers on one build of 200 log lines; each must get
//!   every event; the delay is each arrival's lag behind the first watcher
//!   to get the same event (event times are whole seconds, too coarse).
//!
//!   cargo bench --bench builds
//!
//! (`cargo test` builds bench targets and runs them without `--bench`; then
//! this does nothing.)

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;
use support::{Backend, TestServer};

const LATENCY_BUILDS: usize = 200;
const THROUGHPUT_JOBS: usize = 50;
const BUILDS_PER_JOB: usize = 20;
const WATCHERS: usize = 100;
const FAN_OUT_LINES: usize = 200;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // Warnings on stderr: a stall in a figure usually has one (a lease, a lost wake-up).
    tracing_subscriber::fmt().with_env_filter("warn").with_writer(std::io::stderr).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        latency().await;
        for backend in [Backend::Sqlite, Backend::Postgres] {
            throughput(backend).await;
        }
        fan_out().await;
    });
}

/// Median and 99th percentile of `samples` (sorted in place).
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    (at(0.5), at(0.99))
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

async fn trigger(server: &TestServer, token: &str, pipeline: &str, job: &str) -> i64 {
    let path = format!("/api/v1/teams/main/pipelines/{pipeline}/jobs/{job}/builds");
    let response = server.request(Method::POST, &path, Some(token)).send().await.unwrap();
    assert_eq!(response.status(), 200, "trigger {pipeline}/{job}");
    response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// The build's SSE stream, decoded into events, until `end`; `on_event`
/// sees each one as it arrives.
async fn follow(server: &TestServer, token: &str, build: i64, mut on_event: impl FnMut(&Value) -> bool) {
    let response = server.get(&format!("/api/v1/builds/{build}/events"), Some(token)).await;
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            if frame.contains("event: end") {
                return;
            }
            let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else { continue };
            if !on_event(&serde_json::from_str(data).unwrap()) {
                return;
            }
        }
    }
}

async fn latency() {
    let server = TestServer::start(Backend::Sqlite).await;
    let token = server.admin_token().await;
    let pipeline =
        "jobs:\n- name: hi\n  plan:\n  - task: hi\n    config: {platform: linux, run: {path: echo, args: [hi]}}\n";
    server.set_and_unpause(&token, "latency", pipeline).await;

    let mut through_atc = Vec::with_capacity(LATENCY_BUILDS);
    for _ in 0..LATENCY_BUILDS {
        let started = Instant::now();
        let build = trigger(&server, &token, "latency", "hi").await;
        let mut first_log = None;
        follow(&server, &token, build, |event| {
            if event["event"] == "log" && first_log.is_none() {
                first_log = Some(started.elapsed());
            }
            true
        })
        .await;
        through_atc.push(first_log.expect("the build printed a line"));
    }

    let mut bare = Vec::with_capacity(LATENCY_BUILDS);
    for _ in 0..LATENCY_BUILDS {
        let started = Instant::now();
        let mut child =
            tokio::process::Command::new("echo").arg("hi").stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut line).await.unwrap();
        bare.push(started.elapsed());
        child.wait().await.unwrap();
    }

    let (atc_median, atc_p99) = percentiles(&mut through_atc);
    let (bare_median, bare_p99) = percentiles(&mut bare);
    println!("trigger to first log line, {LATENCY_BUILDS} builds of `echo hi` (SQLite):");
    println!("  through atc:   median {}  p99 {}", ms(atc_median), ms(atc_p99));
    println!("  bare spawn:    median {}  p99 {}", ms(bare_median), ms(bare_p99));
    println!(
        "  atc's share:   median {}  ({:.1}x the bare spawn; goal: at most 20 ms)",
        ms(atc_median.saturating_sub(bare_median)),
        atc_median.as_secs_f64() / bare_median.as_secs_f64()
    );
    server.stop().await;
}

async fn throughput(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let mut pipeline = String::from("jobs:\n");
    for job in 0..THROUGHPUT_JOBS {
        pipeline.push_str(&format!(
            "- name: job-{job}\n  serial: true\n  plan:\n  - task: hi\n    config: {{platform: linux, run: {{path: echo, args: [hi]}}}}\n"
        ));
    }
    server.set_and_unpause(&token, "throughput", &pipeline).await;

    let total = THROUGHPUT_JOBS * BUILDS_PER_JOB;
    let server = std::sync::Arc::new(server);
    let started = Instant::now();
    // One client per job, as many users triggering at once would.
    let triggering: Vec<_> = (0..THROUGHPUT_JOBS)
        .map(|job| {
            let (server, token) = (server.clone(), token.clone());
            tokio::spawn(async move {
                for _ in 0..BUILDS_PER_JOB {
                    trigger(&server, &token, "throughput", &format!("job-{job}")).await;
                }
            })
        })
        .collect();
    for client in triggering {
        client.await.unwrap();
    }
    let triggered = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let finished = server
            .test_db
            .count("SELECT COUNT(*) FROM builds WHERE job_id IS NOT NULL AND completed AND status = 'succeeded'")
            .await as usize;
        if finished == total {
            break;
        }
        assert!(Instant::now() < deadline, "only {finished} of {total} builds finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    println!(
        "throughput ({backend:?}): {total} builds over {THROUGHPUT_JOBS} serial jobs in {:.1} s = {:.1} builds/s (triggering took {:.1} s)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        triggered.as_secs_f64()
    );
    stop(server).await;
}

async fn stop(server: std::sync::Arc<TestServer>) {
    if let Ok(server) = std::sync::Arc::try_unwrap(server) {
        server.stop().await;
    }
}

async fn fan_out() {
    let server = TestServer::start(Backend::Sqlite).await;
    let token = server.admin_token().await;
    let pipeline = format!(
        "jobs:\n- name: chatty\n  plan:\n  - task: talk\n    config: {{platform: linux, run: {{path: sh, args: [-c, 'for i in $(seq 1 {FAN_OUT_LINES}); do echo line $i; sleep 0.01; done']}}}}\n"
    );
    server.set_and_unpause(&token, "fan-out", &pipeline).await;
    // Paused, the build waits while every watcher connects.
    let job = "/api/v1/teams/main/pipelines/fan-out/jobs/chatty";
    server.request(Method::PUT, &format!("{job}/pause"), Some(&token)).send().await.unwrap();
    let build = trigger(&server, &token, "fan-out", "chatty").await;

    let server = std::sync::Arc::new(server);
    let mut watchers = Vec::with_capacity(WATCHERS);
    for _ in 0..WATCHERS {
        let (server, token) = (server.clone(), token.clone());
        watchers.push(tokio::spawn(async move {
            let mut arrivals: HashMap<String, Instant> = HashMap::new();
            let mut lines = 0;
            let mut index = 0;
            follow(&server, &token, build, |event| {
                let key = format!("{index}:{}", event["event"]);
                index += 1;
                arrivals.insert(key, Instant::now());
                if event["event"] == "log" {
                    // Lines written close together may arrive as one event.
                    lines += event["data"]["payload"].as_str().unwrap_or_default().matches('\n').count();
                }
                true
            })
            .await;
            (arrivals, lines)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.request(Method::PUT, &format!("{job}/unpause"), Some(&token)).send().await.unwrap();

    let mut seen = Vec::with_capacity(WATCHERS);
    for watcher in watchers {
        seen.push(watcher.await.unwrap());
    }
    let (seen, lines): (Vec<_>, Vec<_>) = seen.into_iter().unzip();
    let expected = seen[0].len();
    for (watcher, (arrivals, lines)) in seen.iter().zip(lines).enumerate() {
        assert_eq!(lines, FAN_OUT_LINES, "watcher {watcher} got {lines} log lines, expected {FAN_OUT_LINES}");
        assert_eq!(arrivals.len(), expected, "watcher {watcher} missed events");
    }
    let mut delays = Vec::new();
    for key in seen[0].keys() {
        let first = seen.iter().map(|arrivals| arrivals[key]).min().unwrap();
        delays.extend(seen.iter().map(|arrivals| arrivals[key] - first));
    }
    let (median, p99) = percentiles(&mut delays);
    println!(
        "fan-out: {WATCHERS} watchers each got all {expected} events; delay behind the first watcher: median {}  p99 {}",
        ms(median),
        ms(p99)
    );
    stop(server).await;
}
