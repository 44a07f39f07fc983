//! Lookups in a real OpenBao server, as the real binary traces and counts
//! them: `creds.lookup` under the step that needed the var, Vault's request
//! as its CLIENT child, a cache hit on the second build, and the secret in
//! none of atc's log (at debug level), spans or metrics.

use crate::atc_process::Atc;
use crate::builds::Client;
use crate::otlp_receiver::{OtlpReceiver, ReceivedSpan};
use crate::secrets::{SECRET, assert_no_secret, secret_forms};
use crate::{WAIT, random_hex};

const CLIENT_KIND: i32 = 3;

const PIPELINE: &str = r#"
jobs:
- name: show
  plan:
  - task: show
    config:
      platform: linux
      params: {SHOWN: ((topsecret))}
      # printf, not echo: dash's echo would turn the secret's backslash into an escape.
      run: {path: sh, args: [-c, 'printf "shown: %s\n" "$SHOWN"']}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_are_spans_under_their_steps_cached_on_the_second_build_and_never_show_the_secret() {
    let prefix = crate::openbao::mount(2).await;
    crate::openbao::put(&prefix, 2, "main/show/topsecret", serde_json::json!({ "value": SECRET })).await;
    let url = crate::openbao::url();
    let args =
        ["--vault-url", &url, "--vault-client-token", crate::openbao::ROOT_TOKEN, "--vault-path-prefix", &prefix];
    lookups_are_traced_cached_and_never_show_the_secret("vault", "GET", &args, &[]).await;
}

/// Runs atc with `manager_args` (its manager holds `((topsecret))` for
/// pipeline `show`) and `extra_env`, builds twice, and checks the lookups'
/// spans (`method` for the manager's read among its CLIENT requests),
/// metrics and logs.
pub async fn lookups_are_traced_cached_and_never_show_the_secret(
    manager: &str,
    method: &str,
    manager_args: &[&str],
    extra_env: &[(&str, &str)],
) {
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    let mut args = vec![
        "--tracing-otlp-address",
        &address,
        "--metrics-otlp-address",
        &address,
        "--metrics-otlp-interval",
        "500ms",
        "--secret-cache-enabled",
        "--log-level",
        "debug",
    ];
    args.extend_from_slice(manager_args);
    let mut env = vec![crate::FAST_EXPORT];
    env.extend_from_slice(extra_env);
    let (atc, log) = Atc::quickstart_logged(&args, &env);
    let client = Client::login(&atc).await;
    client.set_and_unpause("show", PIPELINE).await;

    let mut lookups: Vec<(ReceivedSpan, ReceivedSpan)> = Vec::new();
    for _ in 0..2 {
        let trace_id = random_hex(16);
        let (build, events) = client.trigger("show", "show", &format!("00-{trace_id}-{}-01", random_hex(8))).await;
        assert_eq!(build["status"], "succeeded", "{events}");
        assert!(events.contains("shown: ((redacted))"), "{events}");
        let step = receiver.wait_for_span(WAIT, |s| s.trace_id == trace_id && s.name == "task show").await;
        let lookup = receiver.wait_for_span(WAIT, |s| s.trace_id == trace_id && s.name == "creds.lookup").await;
        assert_eq!(lookup.parent_span_id, step.span_id, "the lookup is the step's");
        lookups.push((lookup, step));
    }
    let (first, _) = &lookups[0];
    let attribute = |span: &ReceivedSpan, key: &str| span.attributes.get(key).cloned().unwrap_or_default();
    assert_eq!(attribute(first, "concourse.creds.manager"), manager);
    assert_eq!(attribute(first, "concourse.secret.path"), "topsecret");
    assert_eq!(attribute(first, "concourse.cache.hit"), "false");
    assert_eq!(attribute(first, "concourse.secret.found"), "true");
    let reads: Vec<ReceivedSpan> =
        receiver.spans().into_iter().filter(|s| s.parent_span_id == first.span_id && s.kind == CLIENT_KIND).collect();
    assert!(!reads.is_empty(), "{manager}'s requests are CLIENT children of the lookup");
    // The read itself, and perhaps a login before it.
    assert!(reads.iter().any(|read| attribute(read, "http.request.method") == method), "a {method} among {reads:?}");
    for read in &reads {
        assert_eq!(attribute(read, "server.address"), "127.0.0.1");
    }
    let (second, _) = &lookups[1];
    assert_eq!(attribute(second, "concourse.cache.hit"), "true", "the second build is answered from the cache");
    assert_eq!(attribute(second, "concourse.secret.found"), "true");
    assert!(receiver.spans().iter().all(|s| s.parent_span_id != second.span_id), "a cache hit asks nobody");

    let duration = receiver
        .wait_for_metric(WAIT, |m| {
            m.name == "concourse.creds.lookup.duration"
                && m.point_attributes.iter().any(|p| p.get("concourse.cache.hit").map(String::as_str) == Some("true"))
        })
        .await;
    assert!(
        duration.point_attributes.iter().all(|p| p.get("concourse.creds.manager").map(String::as_str) == Some(manager))
    );
    atc.terminate();

    let log = log.text();
    assert!(log.contains("DEBUG"), "atc logs at debug level:\n{log}");
    assert_no_secret("atc's log", &log);
    for metric in receiver.metrics() {
        assert_no_secret("a metric", &format!("{:?} {:?}", metric.point_attributes, metric.resource));
    }
    for export in receiver.trace_exports() {
        for form in secret_forms() {
            let leaked = export.windows(form.len()).any(|window| window == form.as_bytes());
            assert!(!leaked, "a trace export shows the secret as {form:?}: {}", String::from_utf8_lossy(&export));
        }
    }
}
