//! Telemetry end to end: the real `atc` binary exporting to an OTLP receiver
//! in this process, a real Prometheus scraping it, and the Google
//! credential flow against a local token endpoint.

mod atc_process;
mod aws;
mod builds;
#[path = "../support/control_plane.rs"]
#[allow(dead_code)]
mod control_plane;
#[path = "../support/credhub.rs"]
#[allow(dead_code)]
mod credhub;
mod credhub_creds;
mod gcp;
mod kubernetes_creds;
#[path = "../support/moto.rs"]
#[allow(dead_code)]
mod moto;
#[path = "../support/on_exit.rs"]
mod on_exit;
#[path = "../support/openbao.rs"]
#[allow(dead_code)]
mod openbao;
mod otlp_receiver;
mod prometheus;
mod redaction;
#[path = "../support/secrets.rs"]
mod secrets;
mod vault;

use std::time::{Duration, Instant};

use atc_process::Atc;
use otlp_receiver::OtlpReceiver;

/// Export quickly so tests need not wait the default five seconds.
const FAST_EXPORT: (&str, &str) = ("OTEL_BSP_SCHEDULE_DELAY", "100");
const SERVER_KIND: i32 = 2;
const ERROR_STATUS: i32 = 2;
const WAIT: Duration = Duration::from_secs(30);

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

async fn get(url: &str, traceparent: Option<&str>) -> reqwest::StatusCode {
    let mut request = reqwest::Client::new().get(url).header("User-Agent", "telemetry-test/1.0");
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    request.send().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_traceparent_yields_a_server_span_in_the_callers_trace() {
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    let atc = Atc::quickstart(
        &["--tracing-otlp-address", &address, "--tracing-attribute", "deployment.environment:test"],
        &[FAST_EXPORT],
    );
    let (trace_id, parent_id) = (random_hex(16), random_hex(8));
    let traceparent = format!("00-{trace_id}-{parent_id}-01");
    let status = get(&format!("{}/api/v1/teams/main/pipelines", atc.url), Some(&traceparent)).await;
    assert_eq!(status, 200);

    let span = receiver.wait_for_span(WAIT, |s| s.trace_id == trace_id).await;
    assert_eq!(span.name, "GET /api/v1/teams/{team_name}/pipelines");
    assert_eq!(span.parent_span_id, parent_id);
    assert_eq!(span.kind, SERVER_KIND);
    assert_eq!(span.attributes["http.request.method"], "GET");
    assert_eq!(span.attributes["http.route"], "/api/v1/teams/{team_name}/pipelines");
    assert_eq!(span.attributes["url.path"], "/api/v1/teams/main/pipelines");
    assert_eq!(span.attributes["http.response.status_code"], "200");
    assert_eq!(span.attributes["client.address"], "127.0.0.1");
    assert_eq!(span.attributes["user_agent.original"], "telemetry-test/1.0");
    assert_eq!(span.resource["service.name"], "atc");
    assert_eq!(span.resource["deployment.environment"], "test");

    // No route: the span is named by the method alone, never the raw path.
    let unrouted = random_hex(16);
    let status = get(&format!("{}/no/such/thing", atc.url), Some(&format!("00-{unrouted}-{parent_id}-01"))).await;
    assert_eq!(status, 404);
    let span = receiver.wait_for_span(WAIT, |s| s.trace_id == unrouted).await;
    assert_eq!(span.name, "GET");
    assert!(!span.attributes.contains_key("http.route"));
    assert_eq!(span.attributes["http.response.status_code"], "404");
    assert_ne!(span.status_code, ERROR_STATUS, "a 404 is the client's error, not the server's");
    atc.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_export_over_http_protobuf_too() {
    let receiver = OtlpReceiver::start().await;
    let address = format!("http://{}", receiver.http_addr);
    let atc = Atc::quickstart(
        &[
            "--tracing-otlp-address",
            &address,
            "--tracing-otlp-protocol",
            "http/protobuf",
            "--tracing-otlp-header",
            "x-api-key:sesame",
        ],
        &[FAST_EXPORT],
    );
    let trace_id = random_hex(16);
    assert_eq!(
        get(&format!("{}/api/v1/info", atc.url), Some(&format!("00-{trace_id}-{}-01", random_hex(8)))).await,
        200
    );
    let span = receiver.wait_for_span(WAIT, |s| s.trace_id == trace_id).await;
    assert_eq!(span.name, "GET /api/v1/info");
    assert_eq!(span.headers["x-api-key"], "sesame");
    assert_eq!(span.headers["content-type"], "application/x-protobuf");
    atc.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_arrive_over_otlp_with_the_metrics_attributes() {
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    let atc = Atc::quickstart(
        &[
            "--metrics-otlp-address",
            &address,
            "--metrics-otlp-interval",
            "500ms",
            "--metrics-attribute",
            "region:moon",
            "--metrics-otlp-header",
            "x-tenant:blue",
        ],
        &[],
    );
    assert_eq!(get(&format!("{}/api/v1/info", atc.url), None).await, 200);
    let metric = receiver
        .wait_for_metric(WAIT, |m| {
            m.name == "http.server.request.duration"
                && m.point_attributes.iter().any(|p| p.get("http.route").map(String::as_str) == Some("/api/v1/info"))
        })
        .await;
    assert_eq!(metric.resource["region"], "moon");
    assert_eq!(metric.resource["service.name"], "atc");
    assert_eq!(metric.headers["x-tenant"], "blue");
    let point = metric.point_attributes.iter().find(|p| p["http.route"] == "/api/v1/info").unwrap();
    assert_eq!(point["http.request.method"], "GET");
    assert_eq!(point["http.response.status_code"], "200");

    // The same attribute labels every Prometheus series.
    let scraped = atc.scrape().await;
    assert!(
        scraped.lines().any(|l| l.starts_with("concourse_http_responses_duration_seconds_count{")
            && l.contains("region=\"moon\"")
            && l.contains("route=\"/api/v1/info\"")),
        "{scraped}"
    );
    atc.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_otel_variables_apply_where_flags_are_unset() {
    let receiver = OtlpReceiver::start().await;
    let endpoint = format!("http://{}", receiver.grpc_addr);
    let atc = Atc::quickstart(
        &[],
        &[
            FAST_EXPORT,
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "ci-server"),
            ("OTEL_RESOURCE_ATTRIBUTES", "team=infra"),
            ("OTEL_TRACES_SAMPLER", "parentbased_always_off"),
        ],
    );
    let sampled = random_hex(16);
    assert_eq!(
        get(&format!("{}/api/v1/info", atc.url), Some(&format!("00-{sampled}-{}-01", random_hex(8)))).await,
        200
    );
    assert_eq!(get(&format!("{}/api/v1/health", atc.url), None).await, 200);
    let span = receiver.wait_for_span(WAIT, |s| s.trace_id == sampled).await;
    assert_eq!(span.resource["service.name"], "ci-server");
    assert_eq!(span.resource["team"], "infra");
    atc.terminate();
    assert!(
        !receiver.spans().iter().any(|s| s.name == "GET /api/v1/health"),
        "a root was sampled under parentbased_always_off"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_sampling_exports_nothing() {
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    let atc =
        Atc::quickstart(&["--tracing-otlp-address", &address, "--tracing-sampling-strategy", "never"], &[FAST_EXPORT]);
    for _ in 0..20 {
        assert_eq!(
            get(&format!("{}/api/v1/info", atc.url), Some(&format!("00-{}-{}-01", random_hex(16), random_hex(8))))
                .await,
            200
        );
        assert_eq!(get(&format!("{}/api/v1/info", atc.url), None).await, 200);
    }
    // Shutdown flushes whatever was queued; with `never` that is nothing.
    atc.terminate();
    assert!(receiver.spans().is_empty(), "exported: {:#?}", receiver.spans());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probability_sampling_keeps_its_share_of_root_traces() {
    const REQUESTS: usize = 20_000;
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    let atc = Atc::quickstart(
        &[
            "--tracing-otlp-address",
            &address,
            "--tracing-sampling-strategy",
            "probability",
            "--tracing-sampling-rate",
            "0.25",
        ],
        &[FAST_EXPORT, ("OTEL_BSP_MAX_QUEUE_SIZE", "20000")],
    );
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/info", atc.url);
    let mut sent = 0;
    while sent < REQUESTS {
        let batch: Vec<_> = (0..50).map(|_| client.get(&url).send()).collect();
        for response in futures_join_all(batch).await {
            assert_eq!(response.unwrap().status(), 200);
        }
        sent += 50;
    }
    let dropped = atc.sample("concourse_tracing_spans_dropped_total").await;
    atc.terminate();
    let exported = receiver.spans().iter().filter(|s| s.name == "GET /api/v1/info").count();
    let fraction = exported as f64 / REQUESTS as f64;
    assert_eq!(dropped, 0.0, "spans were dropped, the count means nothing");
    assert!((0.23..=0.27).contains(&fraction), "exported {exported} of {REQUESTS} = {fraction}");
}

/// Awaits all `futures` concurrently.
async fn futures_join_all<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_based_strategies_follow_the_callers_sampled_flag() {
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    // Each strategy's own roots go the other way, so only the flag can explain the outcome.
    for (strategy, root_sampled) in [("parent-always", true), ("parent-never", false)] {
        let atc = Atc::quickstart(
            &["--tracing-otlp-address", &address, "--tracing-sampling-strategy", strategy],
            &[FAST_EXPORT],
        );
        let (sampled, unsampled) = (random_hex(16), random_hex(16));
        let info = format!("{}/api/v1/info", atc.url);
        get(&info, Some(&format!("00-{sampled}-{}-01", random_hex(8)))).await;
        get(&info, Some(&format!("00-{unsampled}-{}-00", random_hex(8)))).await;
        let root_before = receiver.spans().len();
        get(&format!("{}/api/v1/health", atc.url), None).await;
        atc.terminate();

        let spans = receiver.spans();
        assert!(spans.iter().any(|s| s.trace_id == sampled), "{strategy}: the sampled caller's trace is missing");
        assert!(
            !spans.iter().any(|s| s.trace_id == unsampled),
            "{strategy}: the unsampled caller's trace was exported"
        );
        let root_exported = spans[root_before..].iter().any(|s| s.name == "GET /api/v1/health");
        assert_eq!(root_exported, root_sampled, "{strategy}: roots");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_costs_the_api_nothing() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{closed_port}");
    let atc = Atc::quickstart(
        &["--tracing-otlp-address", &address, "--metrics-otlp-address", &address, "--metrics-otlp-interval", "1s"],
        &[FAST_EXPORT, ("OTEL_BSP_MAX_QUEUE_SIZE", "64"), ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16")],
    );
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/info", atc.url);
    let rss_before = resident_kib(&atc);
    let mut latencies = Vec::new();
    let started = Instant::now();
    for _ in 0..4_000 {
        let sent = Instant::now();
        assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
        latencies.push(sent.elapsed());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    println!("4000 requests in {elapsed:?}, p99 {p99:?}");
    assert!(p99 < Duration::from_millis(100), "p99 latency {p99:?} with the collector down");

    let dropped = atc.sample("concourse_tracing_spans_dropped_total").await;
    let queued = atc.sample("concourse_tracing_spans_queued").await;
    assert!(dropped >= 3_000.0, "only {dropped} spans counted as dropped");
    assert!(queued <= 64.0, "queue holds {queued} spans, more than its bound");
    let rss_after = resident_kib(&atc);
    assert!(rss_after < rss_before + 64 * 1024, "RSS grew from {rss_before} KiB to {rss_after} KiB");

    let exit = atc.terminate();
    assert!(exit < Duration::from_secs(6), "shutdown took {exit:?} with the collector down");
}

/// The resident set size of atc's process, from /proc.
fn resident_kib(atc: &Atc) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", atc.pid())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stores_an_exemplar_naming_the_requests_trace() {
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    let atc = Atc::quickstart(&["--tracing-otlp-address", &address], &[FAST_EXPORT]);
    let trace_id = random_hex(16);
    let status =
        get(&format!("{}/api/v1/teams/main/pipelines", atc.url), Some(&format!("00-{trace_id}-{}-01", random_hex(8))))
            .await;
    assert_eq!(status, 200);

    // OpenMetrics, with the exemplar, for a scraper that asks for it.
    let openmetrics = reqwest::Client::new()
        .get(&atc.metrics_url)
        .header("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(openmetrics.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = openmetrics.text().await.unwrap();
    let span = receiver.wait_for_span(WAIT, |s| s.trace_id == trace_id).await;
    let exemplar = format!("# {{trace_id=\"{trace_id}\",span_id=\"{}\"}}", span.span_id);
    assert!(text.contains(&exemplar), "no exemplar {exemplar} in:\n{text}");
    assert!(text.trim_end().ends_with("# EOF"));

    // The classic format otherwise: no exemplars, and promtool accepts it.
    let classic = reqwest::get(&atc.metrics_url).await.unwrap();
    assert!(classic.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = classic.text().await.unwrap();
    assert!(!text.contains("trace_id"));
    for series in
        ["concourse_builds_started_total", "concourse_builds_running", "concourse_k8s_pod_startup_duration_seconds"]
    {
        assert!(text.contains(&format!("# TYPE {series}")), "{series} is not registered:\n{text}");
    }
    prometheus::promtool_check(&text).unwrap_or_else(|complaint| panic!("promtool: {complaint}\n{text}"));

    let target = atc.metrics_url.trim_start_matches("http://").trim_end_matches("/metrics").to_string();
    let prometheus = prometheus::Prometheus::scraping(&target).await;
    // The first scrape comes some seconds after start.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ids = prometheus.exemplar_trace_ids("concourse_http_responses_duration_seconds_bucket").await;
        if ids.contains(&trace_id) {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus has no exemplar with trace {trace_id}; it has {ids:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    atc.terminate();
}
