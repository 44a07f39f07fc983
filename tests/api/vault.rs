//! `((vars))` from a real OpenBao server (the Vault API): atc's own
//! manager and a `type: vault` var source, KV v1 and v2, approle logins
//! whose short-lived token is renewed during a build, and the failures a
//! build reports when Vault is away or a var is missing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::creds_pipelines::{checking_job, server_with};
use crate::on_both_backends;
use crate::support::Backend;
use crate::support::openbao::{self, ROOT_TOKEN};

/// How a failed lookup is retried in these tests.
const RETRY_ATTEMPTS: u32 = 3;
const RETRY_INTERVAL: Duration = Duration::from_millis(200);

/// atc's Vault manager on the test server, reading under `prefix` as root.
pub fn vault(prefix: &str, query_timeout: Duration) -> Arc<dyn atc::creds::CredentialManager> {
    vault_at(&openbao::url(), prefix, query_timeout)
}

fn vault_at(url: &str, prefix: &str, query_timeout: Duration) -> Arc<dyn atc::creds::CredentialManager> {
    let settings = atc::creds::vault::VaultSettings {
        url: Some(url.into()),
        path_prefix: Some(prefix.into()),
        client_token: Some(ROOT_TOKEN.into()),
        query_timeout: Some(query_timeout),
        ..Default::default()
    };
    Arc::new(atc::creds::vault::Vault::new(settings.check(&atc::creds::vault::FLAG_NAMES).unwrap()).unwrap())
}

async fn vault_vars_run_end_to_end(backend: Backend) {
    // atc's manager reads a KV v2 mount; the var source a KV v1 mount, with
    // a token that itself comes from atc's manager.
    let global = openbao::mount(2).await;
    let source = openbao::mount(1).await;
    openbao::put(&global, 2, "main/vaulty/greeting", json!({ "value": "hello from the pipeline path" })).await;
    openbao::put(&global, 2, "main/team-wide", json!({ "value": "hello from the team path" })).await;
    openbao::put(&global, 2, "main/login", json!({ "user": "admin", "password": "pw" })).await;
    openbao::put(&global, 2, "main/source-token", json!({ "value": ROOT_TOKEN })).await;
    openbao::put(&source, 1, "main/vaulty/from-source", json!({ "value": "hello from the var source" })).await;
    let (server, token, _work) =
        server_with(backend, vault(&global, Duration::from_secs(10)), RETRY_ATTEMPTS, RETRY_INTERVAL).await;
    let url = openbao::url();
    let yaml = format!(
        "var_sources:\n- name: vs\n  type: vault\n  config: {{url: \"{url}\", path_prefix: \"{source}\", client_token: ((source-token))}}\njobs:\n{}{}",
        checking_job(
            "uses-vault",
            &[
                ("greeting", "hello from the pipeline path"),
                ("team-wide", "hello from the team path"),
                ("login.user", "admin"),
                ("vs:from-source", "hello from the var source"),
            ]
        ),
        checking_job("uses-a-missing-var", &[("not-in-vault", "")]),
    );
    server.set_and_unpause(&token, "vaulty", &yaml).await;
    let (_, watched) = server.trigger_and_watch(&token, "vaulty", "uses-vault").await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.output());
    assert!(watched.log().contains("all vars match"), "{}", watched.output());
    let (_, missing) = server.trigger_and_watch(&token, "vaulty", "uses-a-missing-var").await;
    assert_eq!(missing.status(), "errored", "{}", missing.output());
    assert!(missing.output().contains("undefined variable: ((not-in-vault))"), "{}", missing.output());
    server.stop().await;
}

async fn an_unreachable_vault_errors_the_step_within_the_query_timeout(backend: Backend) {
    // A port nothing listens on, and one that accepts but never answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            held.push(connection);
        }
    });
    for port in [closed, silent_port] {
        let manager = vault_at(&format!("http://127.0.0.1:{port}"), "/concourse", Duration::from_secs(2));
        let (server, token, _work) = server_with(backend, manager, RETRY_ATTEMPTS, RETRY_INTERVAL).await;
        server.set_and_unpause(&token, "away", &format!("jobs:\n{}", checking_job("j", &[("password", "x")]))).await;
        let asked = Instant::now();
        let (_, watched) = server.trigger_and_watch(&token, "away", "j").await;
        assert!(asked.elapsed() < Duration::from_secs(8), "took {:?}", asked.elapsed());
        assert_eq!(watched.status(), "errored", "{}", watched.output());
        let output = watched.output();
        assert!(output.contains("((password))") && output.contains("vault credential manager"), "{output}");
        server.stop().await;
    }
}

async fn an_approle_token_is_renewed_during_a_long_build(backend: Backend) {
    let prefix = openbao::mount(2).await;
    openbao::put(&prefix, 2, "main/first", json!({ "value": "one" })).await;
    openbao::put(&prefix, 2, "main/second", json!({ "value": "two" })).await;
    let (settings, mount) = approle_login(&prefix, json!({ "token_ttl": "5s", "token_max_ttl": "120s" })).await;
    let vault = atc::creds::vault::Vault::new(settings.check(&atc::creds::vault::FLAG_NAMES).unwrap()).unwrap();
    let (server, token, _work) = server_with(backend, Arc::new(vault), RETRY_ATTEMPTS, RETRY_INTERVAL).await;
    let yaml = "jobs:\n- name: long\n  plan:\n  - task: early\n    config: {platform: linux, run: {path: sh, args: [-ec, 'test \"((first))\" = one && sleep 18']}}\n  - task: late\n    config: {platform: linux, run: {path: sh, args: [-ec, 'test \"((second))\" = two && echo late var read']}}\n";
    server.set_and_unpause(&token, "renewing", yaml).await;
    let (_, watched) = server.trigger_and_watch(&token, "renewing", "long").await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.output());
    assert!(watched.log().contains("late var read"), "{}", watched.output());
    // One login's token, renewed: no second login, and Vault says when it was renewed.
    let accessors = openbao::call(Method::GET, "auth/token/accessors?list=true", None).await;
    let mut tokens: Vec<Value> = Vec::new();
    for accessor in accessors["data"]["keys"].as_array().unwrap() {
        let looked =
            openbao::call(Method::POST, "auth/token/lookup-accessor", Some(json!({ "accessor": accessor }))).await;
        if looked["data"]["path"].as_str() == Some(&format!("auth/{mount}/login")) {
            tokens.push(looked["data"].clone());
        }
    }
    assert_eq!(tokens.len(), 1, "one login: {tokens:?}");
    assert!(tokens[0]["last_renewal_time"].as_i64().unwrap_or(0) > 0, "renewed: {:?}", tokens[0]);
    server.stop().await;
}

on_both_backends!(
    vault_vars_run_end_to_end,
    an_unreachable_vault_errors_the_step_within_the_query_timeout,
    an_approle_token_is_renewed_during_a_long_build
);

/// Runs the bao CLI as root against the HTTPS server.
fn bao_over_tls(url: &str, ca: &std::path::Path, args: &[&str]) {
    let output = std::process::Command::new(openbao::bao())
        .args(args)
        .env("BAO_ADDR", url)
        .env("BAO_CACERT", ca)
        .env("BAO_TOKEN", ROOT_TOKEN)
        .output()
        .unwrap();
    assert!(output.status.success(), "bao {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// Writes `value` at `path` of the HTTPS server's `secret/` mount.
fn put_over_tls(url: &str, ca: &std::path::Path, path: &str, value: &str) {
    bao_over_tls(url, ca, &["kv", "put", "-mount=secret", path, &format!("value={value}")]);
}

/// atc logs in with a client certificate (the cert auth backend, over
/// mutual TLS): given as files (as the flags give them) to atc's manager,
/// and as PEM text to a var source.
async fn a_client_certificate_logs_in_with_the_cert_backend(backend: Backend) {
    let (url, ca) = openbao::tls();
    put_over_tls(&url, &ca, "main/certy/greeting", "logged in with a certificate");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("client.pem"), dir.path().join("client-key.pem"));
    let openssl = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=atc"])
        .args(["-addext", "extendedKeyUsage=clientAuth", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(openssl.status.success(), "openssl: {}", String::from_utf8_lossy(&openssl.stderr));
    let mount =
        format!("cert-{}-{}", std::process::id(), if backend == Backend::Sqlite { "sqlite" } else { "postgres" });
    bao_over_tls(&url, &ca, &["auth", "enable", &format!("-path={mount}"), "cert"]);
    bao_over_tls(
        &url,
        &ca,
        &["write", &format!("sys/policies/acl/{mount}"), "policy=path \"secret/*\" { capabilities = [\"read\"] }"],
    );
    let certificate = format!("certificate=@{}", cert.display());
    bao_over_tls(
        &url,
        &ca,
        &["write", &format!("auth/{mount}/certs/atc"), &certificate, &format!("token_policies={mount}")],
    );

    let settings = atc::creds::vault::VaultSettings {
        url: Some(url.clone()),
        path_prefix: Some("/secret".into()),
        ca_cert: Some(atc::creds::vault::Pem::File(ca.clone())),
        client_cert: Some(atc::creds::vault::Pem::File(cert.clone())),
        client_key: Some(atc::creds::vault::Pem::File(key.clone())),
        auth_backend: Some("cert".into()),
        auth_params: [("mount".to_string(), mount.clone()), ("name".to_string(), "atc".to_string())].into(),
        query_timeout: Some(Duration::from_secs(10)),
        ..Default::default()
    };
    let vault = atc::creds::vault::Vault::new(settings.check(&atc::creds::vault::FLAG_NAMES).unwrap()).unwrap();
    let (server, token, _work) = server_with(backend, Arc::new(vault), RETRY_ATTEMPTS, RETRY_INTERVAL).await;
    let indent = |path: &std::path::Path| -> String {
        std::fs::read_to_string(path).unwrap().lines().map(|line| format!("      {line}\n")).collect()
    };
    let yaml = format!(
        "var_sources:\n- name: certy\n  type: vault\n  config:\n    url: {url}\n    path_prefix: /secret\n    auth_backend: cert\n    auth_params: {{mount: {mount}, name: atc}}\n    ca_cert: |\n{}    client_cert: |\n{}    client_key: |\n{}jobs:\n{}",
        indent(&ca),
        indent(&cert),
        indent(&key),
        checking_job(
            "j",
            &[("greeting", "logged in with a certificate"), ("certy:greeting", "logged in with a certificate")]
        )
    );
    server.set_and_unpause(&token, "certy", &yaml).await;
    let (_, watched) = server.trigger_and_watch(&token, "certy", "j").await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.output());
    server.stop().await;
}

async fn vault_over_tls_is_trusted_with_its_ca_only(backend: Backend) {
    let (url, ca) = openbao::tls();
    put_over_tls(&url, &ca, "main/tls/greeting", "over tls");
    // The dev server's certificate names 127.0.0.1 and localhost only.
    let manager = |ca_cert: Option<&std::path::Path>,
                   insecure_skip_verify: bool,
                   server_name: Option<&str>|
     -> Arc<dyn atc::creds::CredentialManager> {
        let settings = atc::creds::vault::VaultSettings {
            url: Some(url.clone()),
            path_prefix: Some("/secret".into()),
            client_token: Some(ROOT_TOKEN.into()),
            ca_cert: ca_cert.map(|path| atc::creds::vault::Pem::File(path.to_path_buf())),
            server_name: server_name.map(str::to_string),
            insecure_skip_verify,
            query_timeout: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        Arc::new(atc::creds::vault::Vault::new(settings.check(&atc::creds::vault::FLAG_NAMES).unwrap()).unwrap())
    };
    let yaml = format!("jobs:\n{}", checking_job("j", &[("greeting", "over tls")]));
    for (what, credentials, trusted) in [
        ("--vault-ca-cert", manager(Some(&ca), false, None), true),
        ("--vault-insecure-skip-verify", manager(None, true, None), true),
        ("the system's roots only", manager(None, false, None), false),
        ("--vault-server-name the certificate names", manager(Some(&ca), false, Some("localhost")), true),
        ("--vault-server-name it does not name", manager(Some(&ca), false, Some("vault.example.com")), false),
    ] {
        let (server, token, _work) = server_with(backend, credentials, RETRY_ATTEMPTS, RETRY_INTERVAL).await;
        server.set_and_unpause(&token, "tls", &yaml).await;
        let (_, watched) = server.trigger_and_watch(&token, "tls", "j").await;
        if trusted {
            assert_eq!(watched.status(), "succeeded", "{what}: {}", watched.output());
        } else {
            assert_eq!(watched.status(), "errored", "{what}: {}", watched.output());
            let output = watched.output();
            assert!(output.contains("((greeting))") && output.contains("vault credential manager"), "{output}");
        }
        server.stop().await;
    }
}

/// A `type: vault` var source takes its CA as PEM text, as Concourse does.
async fn a_var_source_trusts_the_ca_it_is_given_as_pem_text(backend: Backend) {
    let (url, ca) = openbao::tls();
    put_over_tls(&url, &ca, "main/pem/greeting", "trusted by pem text");
    let (server, token, _work) =
        server_with(backend, Arc::new(atc::creds::NoCredentials), RETRY_ATTEMPTS, RETRY_INTERVAL).await;
    let pem = std::fs::read_to_string(&ca).unwrap();
    let indented: String = pem.lines().map(|line| format!("      {line}\n")).collect();
    let yaml = format!(
        "var_sources:\n- name: tls\n  type: vault\n  config:\n    url: {url}\n    path_prefix: /secret\n    client_token: {ROOT_TOKEN}\n    server_name: localhost\n    ca_cert: |\n{indented}jobs:\n{}",
        checking_job("j", &[("tls:greeting", "trusted by pem text")])
    );
    server.set_and_unpause(&token, "pem", &yaml).await;
    let (_, watched) = server.trigger_and_watch(&token, "pem", "j").await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.output());
    server.stop().await;
}

/// With `--vault-auth-backend-max-ttl`, a login is done again once that
/// long has passed, though its token could still be renewed.
async fn a_login_older_than_the_max_ttl_is_done_again(backend: Backend) {
    let prefix = openbao::mount(2).await;
    openbao::put(&prefix, 2, "main/first", json!({ "value": "one" })).await;
    openbao::put(&prefix, 2, "main/second", json!({ "value": "two" })).await;
    let (settings, mount) = approle_login(&prefix, json!({ "token_ttl": "120s" })).await;
    let settings = atc::creds::vault::VaultSettings { auth_max_ttl: Some(Duration::from_secs(2)), ..settings };
    let vault = atc::creds::vault::Vault::new(settings.check(&atc::creds::vault::FLAG_NAMES).unwrap()).unwrap();
    let (server, token, _work) = server_with(backend, Arc::new(vault), RETRY_ATTEMPTS, RETRY_INTERVAL).await;
    let yaml = "jobs:\n- name: long\n  plan:\n  - task: early\n    config: {platform: linux, run: {path: sh, args: [-ec, 'test \"((first))\" = one && sleep 4']}}\n  - task: late\n    config: {platform: linux, run: {path: sh, args: [-ec, 'test \"((second))\" = two && echo late var read']}}\n";
    server.set_and_unpause(&token, "max-ttl", yaml).await;
    let (_, watched) = server.trigger_and_watch(&token, "max-ttl", "long").await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.output());
    let accessors = openbao::call(Method::GET, "auth/token/accessors?list=true", None).await;
    let mut logins = 0;
    for accessor in accessors["data"]["keys"].as_array().unwrap() {
        let looked =
            openbao::call(Method::POST, "auth/token/lookup-accessor", Some(json!({ "accessor": accessor }))).await;
        if looked["data"]["path"].as_str() == Some(&format!("auth/{mount}/login")) {
            logins += 1;
        }
    }
    assert_eq!(logins, 2, "one login per max TTL");
    server.stop().await;
}

on_both_backends!(
    a_client_certificate_logs_in_with_the_cert_backend,
    vault_over_tls_is_trusted_with_its_ca_only,
    a_var_source_trusts_the_ca_it_is_given_as_pem_text,
    a_login_older_than_the_max_ttl_is_done_again
);

/// Vault's kubernetes auth backend against the test control plane: OpenBao
/// reviews atc's service account token with the API server (TokenReview,
/// as a reviewer bound to `system:auth-delegator`); a token the cluster no
/// longer honours is refused even though the role names its account.
async fn a_kubernetes_login_is_reviewed_by_the_cluster(backend: Backend) {
    use crate::support::control_plane;
    let prefix = openbao::mount(2).await;
    openbao::put(&prefix, 2, "main/kube-login", json!({ "value": "logged in with a service account" })).await;
    let namespace = format!("vault-{}", prefix.trim_start_matches('/'));
    let cluster = control_plane::admin().await;
    control_plane::namespace(&cluster, &namespace).await;
    let reviewer = control_plane::service_account_token(&cluster, &namespace, "reviewer").await;
    control_plane::bind_auth_delegator(&cluster, &namespace, "reviewer").await;
    let atc_token = control_plane::service_account_token(&cluster, &namespace, "atc").await;
    let gone_token = control_plane::service_account_token(&cluster, &namespace, "gone").await;
    control_plane::delete_service_account(&cluster, &namespace, "gone").await;

    let mount = format!("k8s-{}", prefix.trim_start_matches('/'));
    openbao::call(Method::POST, &format!("sys/auth/{mount}"), Some(json!({ "type": "kubernetes" }))).await;
    let (api_server, ca) = control_plane::api_server();
    let config = json!({
        "kubernetes_host": api_server,
        "kubernetes_ca_cert": std::fs::read_to_string(ca).unwrap(),
        "token_reviewer_jwt": reviewer,
        "disable_local_ca_jwt": true,
    });
    openbao::call(Method::POST, &format!("auth/{mount}/config"), Some(config)).await;
    let policy = format!("path \"{}/*\" {{ capabilities = [\"read\"] }}", prefix.trim_start_matches('/'));
    openbao::call(Method::PUT, &format!("sys/policies/acl/{mount}"), Some(json!({ "policy": policy }))).await;
    let role = json!({
        "bound_service_account_names": ["atc", "gone"],
        "bound_service_account_namespaces": [namespace],
        "token_policies": [mount],
        "token_ttl": "60s",
    });
    openbao::call(Method::POST, &format!("auth/{mount}/role/atc"), Some(role)).await;

    let yaml = format!("jobs:\n{}", checking_job("j", &[("kube-login", "logged in with a service account")]));
    let tokens = tempfile::tempdir().unwrap();
    for (token, accepted) in [(&atc_token, true), (&gone_token, false)] {
        // The token as a pod has it: a file, read at each login.
        let token_file = tokens.path().join(if accepted { "atc" } else { "gone" });
        std::fs::write(&token_file, token).unwrap();
        let settings = atc::creds::vault::VaultSettings {
            url: Some(openbao::url()),
            path_prefix: Some(prefix.clone()),
            auth_backend: Some("kubernetes".into()),
            auth_params: [
                ("mount".to_string(), mount.clone()),
                ("role".to_string(), "atc".to_string()),
                ("jwt_path".to_string(), token_file.display().to_string()),
            ]
            .into(),
            query_timeout: Some(Duration::from_secs(10)),
            ..Default::default()
        };
        let vault = atc::creds::vault::Vault::new(settings.check(&atc::creds::vault::FLAG_NAMES).unwrap()).unwrap();
        let (server, token, _work) = server_with(backend, Arc::new(vault), RETRY_ATTEMPTS, RETRY_INTERVAL).await;
        server.set_and_unpause(&token, "kube-auth", &yaml).await;
        let (_, watched) = server.trigger_and_watch(&token, "kube-auth", "j").await;
        if accepted {
            assert_eq!(watched.status(), "succeeded", "{}", watched.output());
        } else {
            assert_eq!(watched.status(), "errored", "{}", watched.output());
            let output = watched.output();
            assert!(output.contains("((kube-login))") && output.contains("login failed"), "{output}");
        }
        server.stop().await;
    }
}

on_both_backends!(a_kubernetes_login_is_reviewed_by_the_cluster);

/// An AppRole auth mount of its own whose role (token times `ttls`) may
/// read below `prefix`: the settings atc logs in with, and the mount.
async fn approle_login(prefix: &str, ttls: Value) -> (atc::creds::vault::VaultSettings, String) {
    let mount = format!("approle-{}", prefix.trim_start_matches('/'));
    openbao::call(Method::POST, &format!("sys/auth/{mount}"), Some(json!({ "type": "approle" }))).await;
    let policy = format!("path \"{}/*\" {{ capabilities = [\"read\"] }}", prefix.trim_start_matches('/'));
    openbao::call(Method::PUT, &format!("sys/policies/acl/{mount}"), Some(json!({ "policy": policy }))).await;
    let mut role = ttls;
    role["token_policies"] = json!([mount]);
    openbao::call(Method::POST, &format!("auth/{mount}/role/atc"), Some(role)).await;
    let role_id =
        openbao::call(Method::GET, &format!("auth/{mount}/role/atc/role-id"), None).await["data"]["role_id"].clone();
    let secret_id =
        openbao::call(Method::POST, &format!("auth/{mount}/role/atc/secret-id"), None).await["data"]["secret_id"]
            .clone();
    let settings = atc::creds::vault::VaultSettings {
        url: Some(openbao::url()),
        path_prefix: Some(prefix.to_string()),
        auth_backend: Some("approle".into()),
        auth_params: [
            ("mount".to_string(), mount.clone()),
            ("role_id".to_string(), role_id.as_str().unwrap().to_string()),
            ("secret_id".to_string(), secret_id.as_str().unwrap().to_string()),
        ]
        .into(),
        ..Default::default()
    };
    (settings, mount)
}
