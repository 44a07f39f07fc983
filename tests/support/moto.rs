//! A throwaway `moto_server` (PyPI `moto[server]`, from the venv that
//! `scripts/install-test-deps.sh` fills): a stand-in for AWS SSM Parameter
//! Store and Secrets Manager that speaks their real wire protocols. One per
//! test binary, started on first use, stopped when the test process exits.
//! Tests write what they need with the services' own API calls.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The region every test uses: moto keeps each region's data apart.
pub const REGION: &str = "us-east-1";
/// moto accepts any keys.
pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing-secret";

static SERVER: OnceLock<Result<String, String>> = OnceLock::new();

fn start() -> Result<String, String> {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let program = super::openbao::venv().join("bin/moto_server");
    if !program.exists() {
        return Err(format!("no {}: run scripts/install-test-deps.sh", program.display()));
    }
    let log = std::env::temp_dir().join(format!("atc-test-moto-{}-{port}.log", std::process::id()));
    let child = Command::new(&program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot start moto_server: {e}"))?;
    super::on_exit::run_when_this_process_exits(&format!("kill {} 2>/dev/null; rm -f {}", child.id(), log.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(format!("http://127.0.0.1:{port}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "moto_server did not listen on {port} within 60s: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    ))
}

/// The server's URL, for atc's (test-only) endpoint override.
pub fn url() -> String {
    SERVER.get_or_init(start).clone().unwrap_or_else(|e| panic!("{e}"))
}

/// One call of an AWS JSON API (`AmazonSSM.PutParameter`); moto reads the
/// region from the (unchecked) signature.
async fn call(service: &str, target: &str, body: Value) -> Value {
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    );
    let response = reqwest::Client::new()
        .post(url())
        .header("X-Amz-Target", target)
        .header("Content-Type", "application/x-amz-json-1.1")
        .header("Authorization", authorization)
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{target}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{target}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// An SSM parameter; `secure` makes it a SecureString (encrypted with the default key).
pub async fn put_parameter(name: &str, value: &str, secure: bool) {
    let kind = if secure { "SecureString" } else { "String" };
    let body = json!({ "Name": name, "Value": value, "Type": kind, "Overwrite": true });
    call("ssm", "AmazonSSM.PutParameter", body).await;
}

/// A Secrets Manager secret holding `text`.
pub async fn create_secret(name: &str, text: &str) {
    call("secretsmanager", "secretsmanager.CreateSecret", json!({ "Name": name, "SecretString": text })).await;
}

/// A Secrets Manager secret holding `bytes` (base64 on the wire).
pub async fn create_binary_secret(name: &str, bytes: &[u8]) {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    call("secretsmanager", "secretsmanager.CreateSecret", json!({ "Name": name, "SecretBinary": encoded })).await;
}

/// Marks a secret for deletion (a lookup then finds nothing, as in Concourse).
pub async fn delete_secret(name: &str) {
    call("secretsmanager", "secretsmanager.DeleteSecret", json!({ "SecretId": name })).await;
}
