//! The query string that once killed atc: instance vars as 10,000 dotted
//! segments, on the routes that parse them before anyone logs in. Sent to
//! the real binary, as the report that found it did.

use serde_json::Value;

use crate::atc_process::Atc;

const DOCUMENT_DEPTH: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_dotted_instance_var_segments_are_a_400_and_atc_lives_on() {
    let atc = Atc::quickstart(&[], &[]);
    let http = reqwest::Client::new();
    let query = format!("vars{}=1", ".a".repeat(10_000));
    let deep_but_sane = format!("vars{}=1", ".a".repeat(10 * DOCUMENT_DEPTH));
    let routes = [
        (reqwest::Method::GET, "/api/v1/teams/main/pipelines/anything"),
        (reqwest::Method::GET, "/api/v1/teams/main/pipelines/anything/jobs"),
        (reqwest::Method::POST, "/api/v1/teams/main/pipelines/anything/resources/r/check/webhook?webhook_token=t"),
    ];
    for (method, path) in routes {
        for query in [&query, &deep_but_sane] {
            let separator = if path.contains('?') { '&' } else { '?' };
            let url = format!("{}{path}{separator}{query}", atc.url);
            let response = http
                .request(method.clone(), &url)
                .send()
                .await
                .unwrap_or_else(|err| panic!("{method} {path}: atc did not answer: {}", err.without_url()));
            assert_eq!(response.status(), 400, "{method} {path}");
            let body: Value = response.json().await.unwrap();
            let error = body["errors"][0].as_str().unwrap_or_default();
            assert!(
                error.starts_with("instance vars are malformed: vars.a.a.a")
                    && error.ends_with(&format!("instance vars may nest at most {DOCUMENT_DEPTH} levels deep")),
                "{method} {path}: {body}"
            );
            assert!(error.len() < 200, "the key is not echoed whole: {} bytes", error.len());
        }
        let info = http
            .get(format!("{}/api/v1/info", atc.url))
            .send()
            .await
            .map_err(|e| e.without_url())
            .expect("atc is still up");
        assert_eq!(info.status(), 200);
    }
}
