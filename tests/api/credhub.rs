//! `((vars))` from CredHub. No CredHub server can be had here: these run
//! against the fake in `tests/support/credhub.rs`, which answers with the
//! bodies of CredHub's and UAA's published API examples. Each credential
//! type, the lookup order, a token CredHub stops taking, and a refused
//! UAA client.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::creds_pipelines::{checking_job, server_with};
use crate::on_both_backends;
use crate::support::Backend;
use crate::support::credhub::{CLIENT_ID, CLIENT_SECRET, FakeCredHub};

/// How a failed lookup is retried in these tests.
const RETRY_ATTEMPTS: u32 = 2;
const RETRY_INTERVAL: Duration = Duration::from_millis(100);

fn credhub(url: &str, client_secret: &str) -> Arc<dyn atc::creds::CredentialManager> {
    let settings = atc::creds::credhub::CredHubSettings {
        url: Some(url.into()),
        shared_path: Some("shared".into()),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(client_secret.into()),
        ..Default::default()
    };
    Arc::new(atc::creds::credhub::CredHub::new(settings.check().unwrap()))
}

async fn credhub_vars_of_every_type_run_end_to_end(backend: Backend) {
    let fake = FakeCredHub::start().await;
    fake.set("/concourse/main/chubby/greeting", "value", json!("sample"));
    fake.set("/concourse/main/greeting", "value", json!("the team's, not used"));
    fake.set("/concourse/main/db-password", "password", json!("6mRPZB3bAfb8lRpacnXsHfDhlPqFcjH2h9YDvLpL"));
    fake.set("/concourse/main/settings", "json", json!({ "key": 123, "key_list": ["val1", "val2"], "is_true": true }));
    fake.set(
        "/concourse/main/admin",
        "user",
        json!({ "username": "FQnwWoxgSrDuqDLmeLpU", "password": "6mRPZB3bAfb8lRpacnXsHfDhlPqFcjH2h9YDvLpL", "password_hash": "$6$kjhlkjh$lkjhasdflkjhasdflkjh" }),
    );
    fake.set(
        "/concourse/main/tls",
        "certificate",
        json!({ "ca": "-----BEGIN CERTIFICATE-----ca-----END CERTIFICATE-----", "certificate": "-----BEGIN CERTIFICATE-----cert-----END CERTIFICATE-----", "private_key": "-----BEGIN RSA PRIVATE KEY-----key-----END RSA PRIVATE KEY-----" }),
    );
    fake.set(
        "/concourse/main/deploy-key",
        "ssh",
        json!({ "public_key": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", "private_key": "-----BEGIN RSA PRIVATE KEY-----ssh-----END RSA PRIVATE KEY-----", "public_key_fingerprint": "Ux6WaHm7OuBzDnOUK3LEdKqWjaW4NXvMw0oAsBLgeSQ" }),
    );
    fake.set("/concourse/shared/everyone", "value", json!("from the shared path"));
    let (server, token, _work) =
        server_with(backend, credhub(&fake.url, CLIENT_SECRET), RETRY_ATTEMPTS, RETRY_INTERVAL).await;
    let yaml = format!(
        "jobs:\n{}{}",
        checking_job(
            "uses-credhub",
            &[
                ("greeting", "sample"),
                ("db-password", "6mRPZB3bAfb8lRpacnXsHfDhlPqFcjH2h9YDvLpL"),
                ("settings.key", "123"),
                ("admin.username", "FQnwWoxgSrDuqDLmeLpU"),
                ("admin.password", "6mRPZB3bAfb8lRpacnXsHfDhlPqFcjH2h9YDvLpL"),
                ("tls.ca", "-----BEGIN CERTIFICATE-----ca-----END CERTIFICATE-----"),
                ("deploy-key.public_key", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ"),
                ("everyone", "from the shared path"),
            ]
        ),
        checking_job("uses-a-missing-var", &[("not-in-credhub", "")]),
    );
    server.set_and_unpause(&token, "chubby", &yaml).await;
    let (_, watched) = server.trigger_and_watch(&token, "chubby", "uses-credhub").await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.output());
    assert!(watched.log().contains("all vars match"), "{}", watched.output());
    assert_eq!(fake.tokens_issued(), 1, "one token serves every lookup");

    // CredHub stops taking the token: atc asks UAA for a new one.
    fake.expire_tokens();
    let (_, again) = server.trigger_and_watch(&token, "chubby", "uses-credhub").await;
    assert_eq!(again.status(), "succeeded", "{}", again.output());
    assert_eq!(fake.tokens_issued(), 2);

    let (_, missing) = server.trigger_and_watch(&token, "chubby", "uses-a-missing-var").await;
    assert_eq!(missing.status(), "errored", "{}", missing.output());
    assert!(missing.output().contains("undefined variable: ((not-in-credhub))"), "{}", missing.output());
    server.stop().await;
}

async fn a_refused_uaa_client_errors_the_step_naming_credhub(backend: Backend) {
    let fake = FakeCredHub::start().await;
    fake.set("/concourse/main/greeting", "value", json!("sample"));
    let (server, token, _work) =
        server_with(backend, credhub(&fake.url, "wrong-secret"), RETRY_ATTEMPTS, RETRY_INTERVAL).await;
    server
        .set_and_unpause(&token, "refused", &format!("jobs:\n{}", checking_job("j", &[("greeting", "sample")])))
        .await;
    let (_, watched) = server.trigger_and_watch(&token, "refused", "j").await;
    assert_eq!(watched.status(), "errored", "{}", watched.output());
    let output = watched.output();
    assert!(output.contains("((greeting))") && output.contains("credhub credential manager"), "{output}");
    assert!(output.contains("unauthorized: Bad credentials"), "UAA's error is told: {output}");
    server.stop().await;
}

on_both_backends!(credhub_vars_of_every_type_run_end_to_end, a_refused_uaa_client_errors_the_step_naming_credhub);

async fn an_unreachable_credhub_errors_the_step_naming_it(backend: Backend) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (server, token, _work) = server_with(
        backend,
        credhub(&format!("http://127.0.0.1:{closed}"), CLIENT_SECRET),
        RETRY_ATTEMPTS,
        RETRY_INTERVAL,
    )
    .await;
    server.set_and_unpause(&token, "away", &format!("jobs:\n{}", checking_job("j", &[("greeting", "x")]))).await;
    let asked = std::time::Instant::now();
    let (_, watched) = server.trigger_and_watch(&token, "away", "j").await;
    assert!(asked.elapsed() < std::time::Duration::from_secs(10), "took {:?}", asked.elapsed());
    assert_eq!(watched.status(), "errored", "{}", watched.output());
    let output = watched.output();
    assert!(
        output.contains("((greeting))") && output.contains("credhub credential manager is unavailable"),
        "{output}"
    );
    server.stop().await;
}

on_both_backends!(an_unreachable_credhub_errors_the_step_naming_it);
