//! Export to Google Cloud with Application Default Credentials: a service
//! account file whose `token_uri` is a local fake of Google's token
//! endpoint (which checks the signed JWT), and the OTLP receiver standing
//! in for Google's telemetry endpoint.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atc::telemetry::{GcpConfig, MetricsConfig, Telemetry, TelemetryConfig, TracingConfig};
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use opentelemetry::metrics::MeterProvider;
use opentelemetry::trace::{Tracer, TracerProvider};
use ring::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use serde_json::Value;

use crate::otlp_receiver::OtlpReceiver;

const EMAIL: &str = "atc@my-project.iam.gserviceaccount.com";
const PROJECT: &str = "my-project";

/// A 2048-bit RSA key in PKCS#8 PEM, as service account files hold them.
fn generate_key() -> String {
    let output = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}); scripts/install-test-deps.sh installs it"));
    assert!(output.status.success(), "openssl genpkey failed");
    String::from_utf8(output.stdout).unwrap()
}

fn public_key(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let key = RsaKeyPair::from_pkcs8(&STANDARD.decode(body).unwrap()).unwrap();
    key.public_key().as_ref().to_vec()
}

struct TokenEndpoint {
    public_key: Vec<u8>,
    audience: String,
    issued: Mutex<u32>,
    refused: Mutex<Vec<String>>,
}

/// Google's token endpoint as far as atc sees it: a JWT bearer grant in,
/// a short-lived token out (`token-1`, `token-2`, ...).
async fn issue_token(
    State(endpoint): State<Arc<TokenEndpoint>>,
    axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
) -> (StatusCode, String) {
    let refuse = |why: String| {
        endpoint.refused.lock().unwrap().push(why.clone());
        (StatusCode::BAD_REQUEST, why)
    };
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return refuse(format!("grant_type {:?}", form.get("grant_type")));
    }
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 {
        return refuse("assertion is not a JWT".into());
    }
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default();
    let signed = format!("{}.{}", parts[0], parts[1]);
    if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &endpoint.public_key)
        .verify(signed.as_bytes(), &signature)
        .is_err()
    {
        return refuse("bad signature".into());
    }
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    if claims["iss"] != EMAIL || claims["aud"] != endpoint.audience.as_str() {
        return refuse(format!("claims {claims}"));
    }
    if !claims["scope"].as_str().unwrap_or_default().contains("https://www.googleapis.com/auth/cloud-platform") {
        return refuse(format!("scope {}", claims["scope"]));
    }
    let mut issued = endpoint.issued.lock().unwrap();
    *issued += 1;
    (
        StatusCode::OK,
        serde_json::json!({ "access_token": format!("token-{issued}"), "expires_in": 2, "token_type": "Bearer" })
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_export_authorises_with_the_service_account_and_refreshes_the_token() {
    let receiver = OtlpReceiver::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token_uri = format!("http://{}/token", listener.local_addr().unwrap());
    let key = generate_key();
    let endpoint = Arc::new(TokenEndpoint {
        public_key: public_key(&key),
        audience: token_uri.clone(),
        issued: Mutex::new(0),
        refused: Mutex::new(vec![]),
    });
    let app = axum::Router::new().route("/token", axum::routing::post(issue_token)).with_state(endpoint.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("service-account.json");
    let file = serde_json::json!({
        "type": "service_account", "project_id": PROJECT, "private_key_id": "key-1", "private_key": key,
        "client_email": EMAIL, "token_uri": token_uri,
    });
    std::fs::write(&credentials, file.to_string()).unwrap();

    let google = GcpConfig { project_id: PROJECT.into(), endpoint: format!("http://{}", receiver.grpc_addr) };
    let config = TelemetryConfig {
        tracing: TracingConfig { gcp: Some(google.clone()), ..TracingConfig::default() },
        metrics: MetricsConfig { gcp: Some(google), interval: Duration::from_millis(300), ..MetricsConfig::default() },
        ..TelemetryConfig::default()
    };
    let credentials_path = credentials.to_str().unwrap().to_string();
    let env = move |name: &str| match name {
        "GOOGLE_APPLICATION_CREDENTIALS" => Some(credentials_path.clone()),
        "OTEL_BSP_SCHEDULE_DELAY" => Some("50".to_string()),
        _ => None,
    };
    let telemetry = Telemetry::start_with_env(&config, &env).await.expect("telemetry starts with the service account");
    let tracer = telemetry.tracer_provider().unwrap().tracer("gcp-test");
    tracer.in_span("first", |_| {});

    let span = receiver.wait_for_span(Duration::from_secs(20), |s| s.name == "first").await;
    assert_eq!(span.headers["authorization"], "Bearer token-1");
    assert_eq!(span.headers["x-goog-user-project"], PROJECT);
    assert_eq!(span.resource["gcp.project_id"], PROJECT);

    // The token lives two seconds; later exports carry its successors.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    loop {
        n += 1;
        tracer.in_span(format!("later-{n}"), |_| {});
        tokio::time::sleep(Duration::from_millis(200)).await;
        let refreshed = receiver.spans().into_iter().any(|s| {
            s.name.starts_with("later-") && !["Bearer token-1", ""].contains(&s.headers["authorization"].as_str())
        });
        if refreshed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no export used a refreshed token; issued {}",
            endpoint.issued.lock().unwrap()
        );
    }

    let counter = telemetry.meter_provider().unwrap().meter("gcp-test").u64_counter("gcp.test.count").build();
    counter.add(1, &[]);
    let metric = receiver.wait_for_metric(Duration::from_secs(20), |m| m.name == "gcp.test.count").await;
    assert!(metric.headers["authorization"].starts_with("Bearer token-"));
    assert_eq!(metric.headers["x-goog-user-project"], PROJECT);

    telemetry.shutdown().await;
    server.abort();
    assert!(
        endpoint.refused.lock().unwrap().is_empty(),
        "token requests refused: {:?}",
        endpoint.refused.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_export_without_credentials_stops_startup_saying_why() {
    let config = TelemetryConfig {
        tracing: TracingConfig { gcp: Some(GcpConfig::new(PROJECT.into())), ..TracingConfig::default() },
        ..TelemetryConfig::default()
    };
    let env = |name: &str| (name == "GOOGLE_APPLICATION_CREDENTIALS").then(|| "/nonexistent/creds.json".to_string());
    let error = Telemetry::start_with_env(&config, &env).await.err().expect("start-up fails").to_string();
    assert!(error.contains("--tracing-gcp-project-id") && error.contains("/nonexistent/creds.json"), "{error}");
}
