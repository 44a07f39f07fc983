//! The `atc` binary itself: flags, the config file, `quickstart` as the
//! README runs it, and `migrate`.

mod deploy;
mod leases;
mod nodes;
mod resume;
#[path = "../support/mod.rs"]
mod support;
mod validate_pipeline;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const ATC: &str = env!("CARGO_BIN_EXE_atc");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `atc` with `args` to completion; the environment is cleared of
/// CONCOURSE_* so the developer's shell cannot change the outcome.
fn atc(args: &[&str]) -> std::process::Output {
    let mut command = Command::new(ATC);
    command.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("CONCOURSE_") {
            command.env_remove(key);
        }
    }
    command.output().unwrap()
}

#[test]
fn config_example_documents_every_flag() {
    let example = std::fs::read_to_string(support::source_root().join("config.example.toml")).unwrap();
    let documented: BTreeSet<String> = example
        .lines()
        .map(|line| line.trim_start_matches('#').trim())
        .filter_map(|line| line.split_once(" = ").map(|(key, _)| key.to_string()))
        .collect();
    let root = atc::cli::command();
    let mut missing = Vec::new();
    for name in ["web", "quickstart", "migrate"] {
        let subcommand = root.find_subcommand(name).unwrap();
        for arg in subcommand.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if ["help", "version", "config"].contains(&long) {
                continue;
            }
            if !documented.contains(long) {
                missing.push(format!("{name} --{long}"));
            }
            let env = arg.get_env().map(|e| e.to_string_lossy().to_string());
            let expected_env = format!("CONCOURSE_{}", long.to_uppercase().replace('-', "_"));
            if long != "current-db-version"
                && long != "supported-db-version"
                && long != "migrate-to-latest-version"
                && env.as_deref() != Some(expected_env.as_str())
            {
                missing.push(format!("{name} --{long} has env {env:?}, expected {expected_env}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "flags missing from config.example.toml or their CONCOURSE_ variable:\n{}",
        missing.join("\n")
    );
    // And the other way: every key of the file is a flag of some subcommand.
    let flags: BTreeSet<&str> = ["web", "quickstart", "migrate"]
        .iter()
        .flat_map(|name| root.find_subcommand(name).unwrap().get_arguments())
        .filter_map(|arg| arg.get_long())
        .collect();
    let strays: Vec<&String> = documented.iter().filter(|key| !flags.contains(key.as_str())).collect();
    assert!(strays.is_empty(), "config.example.toml keys that name no flag: {strays:?}");
}

#[test]
fn bad_flag_values_stop_startup_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["web", "--bind-port", "eighty"], "--bind-port"),
        (&["web", "--bind-ip", "localhost:80"], "--bind-ip"),
        (&["web", "--encryption-key", "short"], "--encryption-key"),
        (&["web", "--auth-duration", "forever"], "--auth-duration"),
        (&["web", "--auth-duration", "0s"], "--auth-duration"),
        (&["web", "--add-local-user", "no-password"], "--add-local-user"),
        (&["web", "--log-level", "loud"], "--log-level"),
        (&["web", "--postgres-sslmode", "maybe"], "--postgres-sslmode"),
        (&["web", "--postgres-acquire-timeout", "0s"], "--postgres-acquire-timeout"),
        (&["web", "--external-url", "ci.example.com"], "--external-url"),
        (&["quickstart", "--bind-port", "70000"], "--bind-port"),
        (&["web", "--kubernetes-toleration", "gpu:Sometimes"], "--kubernetes-toleration"),
        (&["web", "--kubernetes-node-selector", "pool"], "--kubernetes-node-selector"),
        (&["web", "--kubernetes-pod-startup-timeout", "0s"], "--kubernetes-pod-startup-timeout"),
        (&["web", "--artifact-upload-max-size", "huge"], "--artifact-upload-max-size"),
        (&["web", "--artifact-unpacked-max-size", "1.5GB"], "--artifact-unpacked-max-size"),
        (&["web", "--tracing-sampling-rate", "2"], "--tracing-sampling-rate"),
        (&["web", "--tracing-sampling-rate", "-0.5"], "--tracing-sampling-rate"),
        (&["web", "--tracing-sampling-strategy", "sometimes"], "parent-probability"),
        (&["web", "--tracing-sampling-strategy", "sometimes"], "--tracing-sampling-strategy"),
        (&["web", "--tracing-otlp-address", "collector"], "--tracing-otlp-address"),
        (&["web", "--tracing-otlp-address", "ftp://collector:21"], "--tracing-otlp-address"),
        (&["web", "--tracing-otlp-protocol", "http/json"], "--tracing-otlp-protocol"),
        (&["web", "--tracing-otlp-header", "no-colon"], "--tracing-otlp-header"),
        (&["web", "--tracing-otlp-header", "bad name:x"], "--tracing-otlp-header"),
        (&["web", "--tracing-attribute", "no-colon"], "--tracing-attribute"),
        (&["web", "--tracing-ui-url", "https://tempo.example/explore"], "--tracing-ui-url"),
        (&["quickstart", "--tracing-ui-url", "tempo.example/{trace_id}"], "--tracing-ui-url"),
        (&["web", "--metrics-attribute", ":empty-key"], "--metrics-attribute"),
        (&["web", "--metrics-otlp-address", "localhost"], "--metrics-otlp-address"),
        (&["web", "--metrics-otlp-protocol", "udp"], "--metrics-otlp-protocol"),
        (&["web", "--metrics-otlp-interval", "0s"], "--metrics-otlp-interval"),
        (&["web", "--prometheus-bind-port", "port"], "--prometheus-bind-port"),
        (&["web", "--prometheus-bind-ip", "somewhere"], "--prometheus-bind-ip"),
        (&["web", "--tracing-otlp-address", "c:4317", "--tracing-gcp-project-id", "p"], "--tracing-gcp-project-id"),
        (&["web", "--metrics-otlp-address", "c:4317", "--metrics-gcp-project-id", "p"], "--metrics-otlp-address"),
        (
            &["quickstart", "--tracing-otlp-address", "http://c:4318", "--tracing-otlp-use-tls"],
            "--tracing-otlp-address",
        ),
        (&["migrate"], "--current-db-version"),
        (&["web", "--vault-url", "127.0.0.1:8200", "--vault-client-token", "t"], "--vault-url"),
        (&["quickstart", "--vault-url", "http://127.0.0.1:8200"], "--vault-client-token"),
        (&["web", "--vault-url", "http://v:8200", "--vault-auth-backend", "ldap"], "--vault-auth-backend"),
        (&["web", "--vault-url", "http://v:8200", "--vault-auth-backend", "approle"], "--vault-auth-param"),
        (&["web", "--vault-url", "http://v:8200", "--vault-auth-backend", "kubernetes"], "--vault-auth-param"),
        (
            &[
                "web",
                "--vault-url",
                "https://v:8200",
                "--vault-client-token",
                "t",
                "--vault-ca-cert",
                "/nonexistent.pem",
            ],
            "--vault-ca-cert",
        ),
        (
            &["web", "--vault-url", "https://v:8200", "--vault-client-token", "t", "--vault-server-name", "v:1"],
            "--vault-server-name",
        ),
        (&["web", "--aws-ssm-region", "r", "--aws-ssm-access-key", "a"], "--aws-ssm-secret-key"),
        (
            &["web", "--aws-secretsmanager-region", "r", "--aws-secretsmanager-team-secret-template", "/{{.team}}"],
            "--aws-secretsmanager-team-secret-template",
        ),
        (&["web", "--aws-ssm-region", "r", "--aws-secretsmanager-region", "r"], "--aws-secretsmanager-region"),
        (&["web", "--kubernetes-config-path", "/nonexistent/kubeconfig"], "--kubernetes-config-path"),
        (&["web", "--credhub-url", "credhub:8844"], "--credhub-url"),
        (&["web", "--credhub-url", "https://c:8844", "--credhub-client-id", "atc"], "--credhub-client-secret"),
        (
            &["web", "--vault-url", "http://v:8200", "--vault-client-token", "t", "--vault-query-timeout", "0s"],
            "--vault-query-timeout",
        ),
        (
            &[
                "web",
                "--vault-url",
                "http://v:8200",
                "--vault-client-token",
                "t",
                "--vault-lookup-templates",
                "/{{.Team}}",
            ],
            "--vault-lookup-templates",
        ),
        (&["web", "--secret-retry-attempts", "0"], "--secret-retry-attempts"),
        (&["web", "--secret-cache-duration", "soon"], "--secret-cache-duration"),
    ];
    for (args, flag) in cases {
        let output = atc(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(stderr.contains(flag), "{args:?}: stderr should name {flag}:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    }
}

#[test]
fn bad_standard_otel_variables_stop_startup_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let cases = [
        ("OTEL_TRACES_SAMPLER", "sometimes", "always_on"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5", "0.0 to 1.0"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "http/protobuf"),
        ("CONCOURSE_TRACING_SAMPLING_RATE", "2", "--tracing-sampling-rate"),
    ];
    for (var, value, accepted) in cases {
        let mut command = Command::new(ATC);
        command.args(["quickstart", "--data-dir", data_dir, "--bind-port", "0", "--prometheus-bind-port", "0"]);
        command.env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1").env(var, value);
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{var}={value} should stop start-up");
        assert!(stderr.contains(var) || stderr.contains(accepted), "{var}={value}: stderr names neither:\n{stderr}");
        assert!(stderr.contains(accepted), "{var}={value}: stderr should list {accepted}:\n{stderr}");
    }
}

#[test]
fn config_file_errors_name_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atc.toml");
    let path_str = path.to_str().unwrap();

    std::fs::write(&path, "bind-prot = 9000\n").unwrap();
    let stderr = String::from_utf8_lossy(&atc(&["quickstart", "--config", path_str]).stderr).to_string();
    assert!(stderr.contains("bind-prot") && stderr.contains("atc.toml"), "{stderr}");

    std::fs::write(&path, "bind-port = [1, 2]\n").unwrap();
    let stderr = String::from_utf8_lossy(&atc(&["quickstart", "--config", path_str]).stderr).to_string();
    assert!(stderr.contains("bind-port"), "{stderr}");

    std::fs::write(&path, "bind-port = \n").unwrap();
    let stderr = String::from_utf8_lossy(&atc(&["quickstart", "--config", path_str]).stderr).to_string();
    assert!(stderr.contains("not valid TOML"), "{stderr}");

    std::fs::write(&path, "bind-port = \"many\"\n").unwrap();
    let stderr = String::from_utf8_lossy(&atc(&["quickstart", "--config", path_str]).stderr).to_string();
    assert!(stderr.contains("--bind-port"), "{stderr}");

    let stderr = String::from_utf8_lossy(&atc(&["quickstart", "--config", "/nonexistent/atc.toml"]).stderr).to_string();
    assert!(stderr.contains("/nonexistent/atc.toml"), "{stderr}");
}

#[test]
fn web_refuses_to_start_without_a_main_team_owner() {
    let output = atc(&["web", "--add-local-user", "a:b"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--main-team-local-user"));
}

/// A running `atc quickstart`, killed when dropped.
struct Quickstart {
    child: Child,
    url: String,
    stdout: Vec<String>,
}

impl Drop for Quickstart {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `atc quickstart` and waits (with a deadline) for its banner.
fn quickstart(data_dir: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> Quickstart {
    let port = free_port();
    let mut command = Command::new(ATC);
    command
        .args(["quickstart", "--data-dir", data_dir.to_str().unwrap(), "--bind-port", &port.to_string()])
        // Quickstart serves Prometheus on 9391 by default; tests run side by side.
        .args(["--prometheus-bind-port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("CONCOURSE_") {
            command.env_remove(key);
        }
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        let done = line.contains("trigger-job");
        stdout.push(line);
        if done {
            break;
        }
    }
    assert!(stdout.iter().any(|l| l.contains("trigger-job")), "quickstart did not print its banner: {stdout:?}");
    Quickstart { child, url: format!("http://127.0.0.1:{port}"), stdout }
}

fn printed_password(quickstart: &Quickstart) -> String {
    let line = quickstart.stdout.iter().find(|l| l.starts_with("local user:")).expect("credentials line");
    line.split("password:").nth(1).unwrap().trim().to_string()
}

/// `fly login` as the quickstart's user: the password grant fly sends.
async fn fly_login(url: &str, password: &str) -> String {
    let token: Value = reqwest::Client::new()
        .post(format!("{url}/sky/issuer/token"))
        .basic_auth("fly", Some("Zmx5"))
        .form(&[("grant_type", "password"), ("username", "admin"), ("password", password), ("scope", "openid")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().expect("a token").to_string()
}

#[tokio::test]
async fn quickstart_serves_the_readme_promise() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let qs = quickstart(dir.path(), &[], &[]);
    println!("quickstart ready after {:?}", started.elapsed());
    let http = reqwest::Client::new();

    let info: Value = http.get(format!("{}/api/v1/info", qs.url)).send().await.unwrap().json().await.unwrap();
    assert!(info["version"].is_string());

    let password = printed_password(&qs);
    let token = fly_login(&qs.url, &password).await;

    let sample = std::fs::read_to_string(dir.path().join("hello.yml")).unwrap();
    let config_url = format!("{}/api/v1/teams/main/pipelines/hello/config", qs.url);
    let put = http
        .put(&config_url)
        .bearer_auth(&token)
        .header("Content-Type", "application/x-yaml")
        .body(sample)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let got: Value = http.get(&config_url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(got["config"]["jobs"][0]["name"], "say-hello");

    // ...and runs: unpause, trigger, and the build says hello.
    let pipeline_url = format!("{}/api/v1/teams/main/pipelines/hello", qs.url);
    let unpause = http.put(format!("{pipeline_url}/unpause")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(unpause.status(), 200);
    let trigger = http.post(format!("{pipeline_url}/jobs/say-hello/builds")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(trigger.status(), 200);
    let build: Value = trigger.json().await.unwrap();
    let build_url = format!("{}/api/v1/builds/{}", qs.url, build["id"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let build: Value = http.get(&build_url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        let status = build["status"].as_str().unwrap().to_string();
        if !matches!(status.as_str(), "pending" | "started") || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, "succeeded");
    let events =
        http.get(format!("{build_url}/events")).bearer_auth(&token).send().await.unwrap().text().await.unwrap();
    assert!(events.contains("Hello from atc!"), "{events}");
    drop(qs);

    // A restart keeps the data and the generated user.
    let again = quickstart(dir.path(), &[], &[]);
    assert_eq!(printed_password(&again), password);
    let config_url = format!("{}/api/v1/teams/main/pipelines/hello/config", again.url);
    let still: Value = http.get(&config_url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(still["config"]["jobs"][0]["name"], "say-hello");
}

#[tokio::test]
async fn config_file_applies_below_environment_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("atc.toml");
    std::fs::write(&file, "cluster-name = \"from-file\"\nadd-local-user = [\"ann:pw1\", \"bob:pw2\"]\n").unwrap();
    let file = file.to_str().unwrap();
    let http = reqwest::Client::new();
    let cluster = |url: String| {
        let http = http.clone();
        async move {
            let info: Value = http.get(format!("{url}/api/v1/info")).send().await.unwrap().json().await.unwrap();
            info["cluster_name"].as_str().unwrap_or("").to_string()
        }
    };

    let from_file = quickstart(dir.path(), &["--config", file], &[]);
    assert_eq!(cluster(from_file.url.clone()).await, "from-file");
    // Both users from the list can log in.
    for (user, password) in [("ann", "pw1"), ("bob", "pw2")] {
        let status = http
            .post(format!("{}/sky/issuer/token", from_file.url))
            .basic_auth("fly", Some("Zmx5"))
            .form(&[("grant_type", "password"), ("username", user), ("password", password)])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{user} from the config file");
    }
    drop(from_file);

    let from_env = quickstart(dir.path(), &["--config", file], &[("CONCOURSE_CLUSTER_NAME", "from-env")]);
    assert_eq!(cluster(from_env.url.clone()).await, "from-env");
    drop(from_env);

    let from_flag = quickstart(
        dir.path(),
        &["--config", file, "--cluster-name", "from-flag"],
        &[("CONCOURSE_CLUSTER_NAME", "from-env")],
    );
    assert_eq!(cluster(from_flag.url.clone()).await, "from-flag");
}

#[tokio::test]
async fn migrate_reports_and_applies_versions() {
    let settings = support::postgres::fresh_database().await;
    let port = settings.port.to_string();
    let base =
        ["migrate", "--postgres-port", &port, "--postgres-user", "postgres", "--postgres-database", &settings.database];
    let run = |flag: &str| {
        let mut args: Vec<&str> = base.to_vec();
        args.push(flag);
        let output = atc(&args);
        assert!(output.status.success(), "{flag}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let supported = run("--supported-db-version");
    assert_eq!(run("--current-db-version"), "0");
    assert_eq!(run("--migrate-to-latest-version"), supported);
    assert_eq!(run("--current-db-version"), supported);
}
