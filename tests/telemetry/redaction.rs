//! A secret a build looked up stays out of what atc logs and exports
//! (issue 9): the real binary at `--log-level debug` runs a build using
//! the secret every way (and a check failing with it); its stderr and
//! every trace export never show it. `tests/api/redaction.rs` covers the
//! events, the API and the database.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::atc_process::Atc;
use crate::builds::Client;
use crate::otlp_receiver::OtlpReceiver;
use crate::secrets::{SECRET, assert_no_secret, fixture, secret_forms};
use crate::{ERROR_STATUS, FAST_EXPORT, WAIT, random_hex};

impl Client {
    /// `fly check-resource`, waiting for the check build to end.
    async fn check(&self, pipeline: &str, resource: &str) -> Value {
        let path = format!("{}/api/v1/teams/main/pipelines/{pipeline}/resources/{resource}/check", self.url);
        let response = self.http.post(path).bearer_auth(&self.token).send().await.unwrap();
        assert_eq!(response.status(), 201, "check {resource}");
        let url = format!("{}/api/v1/builds/{}", self.url, response.json::<Value>().await.unwrap()["id"]);
        let deadline = Instant::now() + WAIT;
        loop {
            let build: Value = self.http.get(&url).bearer_auth(&self.token).send().await.unwrap().json().await.unwrap();
            if !matches!(build["status"].as_str(), Some("pending" | "started")) {
                return build;
            }
            assert!(Instant::now() < deadline, "the check of {resource} did not end");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_the_server_log_and_the_exported_spans() {
    let receiver = OtlpReceiver::start().await;
    let address = receiver.grpc_addr.to_string();
    let creds = format!("topsecret:{SECRET}");
    let types = fixture("types");
    let args = [
        "--tracing-otlp-address",
        &address,
        "--dummy-creds-var",
        &creds,
        "--resource-types-dir",
        types.to_str().unwrap(),
        "--log-level",
        "debug",
    ];
    let (atc, log) = Atc::quickstart_logged(&args, &[FAST_EXPORT]);
    let client = Client::login(&atc).await;
    client.set_and_unpause("leaky", &std::fs::read_to_string(fixture("pipeline.yml")).unwrap()).await;
    assert_eq!(client.check("leaky", "broken-check").await["status"], "failed");

    let trace_id = random_hex(16);
    let (build, events) = client.trigger("leaky", "leaky", &format!("00-{trace_id}-{}-01", random_hex(8))).await;
    assert_eq!(build["status"], "succeeded", "{events}");
    assert!(events.contains("((redacted))"), "{events}");
    // The step that errored quoting its request says so, redacted.
    let garbage = receiver.wait_for_span(WAIT, |s| s.trace_id == trace_id && s.name == "get garbage").await;
    assert_eq!(garbage.status_code, ERROR_STATUS);
    assert!(garbage.status_message.contains("\"echo\":\"((redacted))\""), "{}", garbage.status_message);
    receiver.wait_for_span(WAIT, |s| s.trace_id == trace_id && s.name == "build leaky/leaky").await;
    atc.terminate();

    let log = log.text();
    assert!(log.contains("DEBUG"), "atc logs at debug level:\n{log}");
    assert_no_secret("atc's log", &log);
    let exports = receiver.trace_exports();
    assert!(!exports.is_empty());
    for export in &exports {
        for form in secret_forms() {
            let leaked = export.windows(form.len()).any(|window| window == form.as_bytes());
            assert!(!leaked, "a trace export shows the secret as {form:?}: {}", String::from_utf8_lossy(export));
        }
    }
}
