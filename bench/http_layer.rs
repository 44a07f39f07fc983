//! In-process companion to `tracing_overhead.sh`: the same API router and
//! handlers (SQLite), called without a network in between, with tracing
//! off, `always` exporting to a local OTLP receiver, and `probability`
//! 0.01. What counts is the process's CPU time per request, the export of
//! every span included (each round ends with a flush); rounds interleave the
//! three and the cheapest round of each counts, which keeps other load on
//! the machine out of the comparison.
//!
//!   cargo bench --bench http_layer
//!
//! (`cargo test` builds bench targets and runs them without `--bench`; then
//! this does nothing.)

use std::sync::Arc;
use std::time::Duration;

use atc::api::{AppState, Settings};
use atc::auth::{LocalUsers, TokenService};
use atc::db::{Db, TeamAuth};
use atc::telemetry::{KeyValuePair, OtlpAddress, OtlpConfig, Protocol, SamplingStrategy, Telemetry, TelemetryConfig};
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

const ROUNDS: usize = 7;
/// Each path with the requests of one round (about half a second).
const PATHS: [(&str, usize); 2] = [("/api/v1/info", 100_000), ("/api/v1/teams/main/pipelines", 10_000)];

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // Room for every span of a round: a drop would make `always` look cheaper than it is.
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("OTEL_BSP_MAX_QUEUE_SIZE", "200000") };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(run());
}

/// An OTLP/HTTP receiver on a thread of its own that accepts every export.
fn start_sink() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = Router::new().fallback(|| async { ([("content-type", "application/x-protobuf")], "") });
            axum::serve(listener, app).await.unwrap();
        });
    });
    addr
}

fn tracing_config(sink: std::net::SocketAddr, strategy: SamplingStrategy, rate: f64) -> TelemetryConfig {
    let mut config = TelemetryConfig::default();
    config.tracing.otlp = OtlpConfig {
        address: Some(OtlpAddress::parse_flag(&format!("http://{sink}")).unwrap()),
        protocol: Some(Protocol::HttpProtobuf),
        headers: Vec::<KeyValuePair>::new(),
        use_tls: false,
    };
    config.tracing.sampling_strategy = Some(strategy);
    config.tracing.sampling_rate = Some(rate);
    config
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite(&dir.path().join("atc.db")).await.unwrap();
    db.migrate().await.unwrap();
    db.save_team("main", &TeamAuth::new()).await.unwrap();
    let runtime =
        atc::runtime::local::LocalRuntime::new(atc::runtime::local::LocalRuntimeOptions::new(dir.path().join("work")))
            .await
            .unwrap();
    let engine = atc::engine::Engine::new(
        db.clone(),
        Arc::new(runtime),
        "http://127.0.0.1:8080".into(),
        Arc::new(atc::creds::Managed::new(Arc::new(atc::creds::NoCredentials), Default::default())),
        Default::default(),
        true,
        atc::engine::tracker::LeaseSettings::for_this_process(Duration::from_secs(30)),
    );
    let state = AppState {
        engine,
        tokens: TokenService::new(db.clone(), Duration::from_secs(3600)),
        db,
        users: Arc::new(LocalUsers::new(vec![])),
        settings: Arc::new(Settings {
            external_url: "http://127.0.0.1:8080".into(),
            cluster_name: "bench".into(),
            upload_limits: atc::runtime::UploadLimits { max_compressed_bytes: 1 << 30, max_unpacked_bytes: 4 << 30 },
            trace_link: None,
        }),
        cookie_secure: false,
    };
    atc::telemetry::propagation::install_global_propagator();

    // The layer takes the global tracer when the router is built.
    let off = atc::api::router(state.clone());
    let sink = start_sink();
    let always = Telemetry::start(&tracing_config(sink, SamplingStrategy::Always, 1.0)).await.unwrap();
    opentelemetry::global::set_tracer_provider(always.tracer_provider().unwrap().clone());
    let always_router = atc::api::router(state.clone());
    let sampled = Telemetry::start(&tracing_config(sink, SamplingStrategy::Probability, 0.01)).await.unwrap();
    opentelemetry::global::set_tracer_provider(sampled.tracer_provider().unwrap().clone());
    let sampled_router = atc::api::router(state.clone());
    let modes = [(off, None), (always_router, Some(&always)), (sampled_router, Some(&sampled))];

    println!("CPU time per request, spans' export included; cheapest of {ROUNDS} rounds; release build");
    println!(
        "{:<30} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "us/request", "off", "always", "p=0.01", "always cost", "p=0.01 cost"
    );
    for (path, requests) in PATHS {
        let mut best = [Duration::MAX; 3];
        for _ in 0..ROUNDS {
            for (i, (router, telemetry)) in modes.iter().enumerate() {
                best[i] = best[i].min(round(router, path, requests, *telemetry).await);
            }
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6 / requests as f64;
        let (o, a, p) = (us(best[0]), us(best[1]), us(best[2]));
        println!(
            "{path:<30} {o:>10.2} {a:>10.2} {p:>10.2} {:>11.1}% {:>11.1}%   (+{:.2} us, +{:.2} us)",
            (a / o - 1.0) * 100.0,
            (p / o - 1.0) * 100.0,
            a - o,
            p - o
        );
    }
    println!(
        "goal: always costs at most 5%, p=0.01 at most 1% (of a request served over HTTP: see tracing_overhead.sh)"
    );
    always.shutdown().await;
    sampled.shutdown().await;
}

/// The CPU time of `requests` requests to `path`, and of exporting their spans.
async fn round(router: &Router, path: &str, requests: usize, telemetry: Option<&Telemetry>) -> Duration {
    let started = process_cpu_time();
    for _ in 0..requests {
        let response = router.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        let _ = response.into_body().collect().await.unwrap();
    }
    if let Some(provider) = telemetry.and_then(Telemetry::tracer_provider) {
        tokio::task::block_in_place(|| provider.force_flush()).unwrap();
    }
    process_cpu_time() - started
}

/// CPU time of this process, all threads (the export thread included).
fn process_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}
