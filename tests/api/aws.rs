//! `((vars))` from AWS SSM Parameter Store and Secrets Manager, served by
//! a real `moto_server` (their wire protocols, through the AWS SDK): atc's
//! own manager and `type: ssm` / `type: secretsmanager` var sources,
//! SecureStrings, parameters below a name as fields, JSON secrets as
//! fields, binary secrets, and secrets marked for deletion.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atc::creds::aws::{AwsService, AwsSettings, SecretsManager, Ssm};

use crate::creds_pipelines::{checking_job, server_with};
use crate::on_both_backends;
use crate::support::Backend;
use crate::support::moto::{self, ACCESS_KEY, REGION, SECRET_KEY};

/// How a failed lookup is retried in these tests.
const RETRY_ATTEMPTS: u32 = 3;
const RETRY_INTERVAL: Duration = Duration::from_millis(200);

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A name prefix no other test (or backend) writes under.
pub fn unique_prefix() -> String {
    format!("/atc-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

/// Settings of a manager reading under `prefix` instead of `/concourse`.
fn settings(prefix: &str) -> AwsSettings {
    atc::creds::aws::use_test_endpoint(&moto::url());
    AwsSettings {
        region: Some(REGION.into()),
        access_key: Some(ACCESS_KEY.into()),
        secret_key: Some(SECRET_KEY.into()),
        pipeline_secret_template: Some(format!("{prefix}/{{{{.Team}}}}/{{{{.Pipeline}}}}/{{{{.Secret}}}}")),
        team_secret_template: Some(format!("{prefix}/{{{{.Team}}}}/{{{{.Secret}}}}")),
        shared: Some(format!("{prefix}/shared")),
        ..AwsSettings::default()
    }
}

/// atc's SSM manager on the test server, reading under `prefix`.
pub fn ssm(prefix: &str) -> Arc<dyn atc::creds::CredentialManager> {
    let config = settings(prefix).check(AwsService::Ssm, &|key| AwsService::Ssm.flag(key)).unwrap();
    Arc::new(Ssm::new(config))
}

async fn aws_vars_run_end_to_end(backend: Backend) {
    let global = unique_prefix();
    moto::put_parameter(&format!("{global}/main/awsy/greeting"), "hello from the pipeline path", false).await;
    moto::put_parameter(&format!("{global}/main/team-wide"), "hello from a SecureString", true).await;
    moto::put_parameter(&format!("{global}/shared/everyone"), "hello from the shared path", false).await;
    // No parameter `login`, but two below it: its fields.
    moto::put_parameter(&format!("{global}/main/login/user"), "admin", false).await;
    moto::put_parameter(&format!("{global}/main/login/password"), "pw", true).await;
    // The var sources' keys come from atc's manager.
    moto::put_parameter(&format!("{global}/main/aws-secret-key"), SECRET_KEY, true).await;

    let sm = unique_prefix();
    moto::create_secret(&format!("{sm}/main/awsy/plain"), "hello from secrets manager").await;
    moto::create_secret(&format!("{sm}/main/db"), r#"{"user":"dbuser","port":5432}"#).await;
    moto::create_binary_secret(&format!("{sm}/main/bin"), br#"{"key":"from binary"}"#).await;
    moto::create_secret(&format!("{sm}/common"), "hello from the shared template").await;
    moto::create_secret(&format!("{sm}/main/awsy/gone"), "deleted").await;
    moto::delete_secret(&format!("{sm}/main/awsy/gone")).await;

    let ps = unique_prefix();
    moto::put_parameter(&format!("{ps}/main/from-ssm-source"), "hello from the ssm var source", false).await;

    let (server, token, _work) = server_with(backend, ssm(&global), RETRY_ATTEMPTS, RETRY_INTERVAL).await;
    let source = |name: &str, kind: &str, extra: String| {
        format!(
            "- name: {name}\n  type: {kind}\n  config: {{region: {REGION}, access_key: {ACCESS_KEY}, secret_key: ((aws-secret-key)), {extra}}}\n"
        )
    };
    let templates = |prefix: &str| {
        format!(
            "pipeline_secret_template: \"{prefix}/{{{{.Team}}}}/{{{{.Pipeline}}}}/{{{{.Secret}}}}\", team_secret_template: \"{prefix}/{{{{.Team}}}}/{{{{.Secret}}}}\""
        )
    };
    let yaml = format!(
        "var_sources:\n{}{}jobs:\n{}{}",
        source("sm", "secretsmanager", format!("{}, shared_secret_template: \"{sm}/{{{{.Secret}}}}\"", templates(&sm))),
        source("ps", "ssm", templates(&ps)),
        checking_job(
            "uses-aws",
            &[
                ("greeting", "hello from the pipeline path"),
                ("team-wide", "hello from a SecureString"),
                ("everyone", "hello from the shared path"),
                ("login.user", "admin"),
                ("login.password", "pw"),
                ("sm:plain", "hello from secrets manager"),
                ("sm:db.user", "dbuser"),
                ("sm:db.port", "5432"),
                ("sm:bin.key", "from binary"),
                ("sm:common", "hello from the shared template"),
                ("ps:from-ssm-source", "hello from the ssm var source"),
            ]
        ),
        checking_job("uses-a-deleted-secret", &[("sm:gone", "")]),
    );
    server.set_and_unpause(&token, "awsy", &yaml).await;
    let (_, watched) = server.trigger_and_watch(&token, "awsy", "uses-aws").await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.output());
    assert!(watched.log().contains("all vars match"), "{}", watched.output());
    let (_, missing) = server.trigger_and_watch(&token, "awsy", "uses-a-deleted-secret").await;
    assert_eq!(missing.status(), "errored", "{}", missing.output());
    assert!(missing.output().contains("undefined variable: ((sm:gone))"), "{}", missing.output());
    server.stop().await;
}

async fn info_describes_the_manager_without_its_keys(backend: Backend) {
    let (server, token, _work) = server_with(backend, ssm("/described"), RETRY_ATTEMPTS, RETRY_INTERVAL).await;
    let creds: serde_json::Value = server.get("/api/v1/info/creds", Some(&token)).await.json().await.unwrap();
    assert_eq!(
        creds,
        serde_json::json!({ "ssm": {
            "aws_region": REGION,
            "pipeline_secret_template": "/described/{{.Team}}/{{.Pipeline}}/{{.Secret}}",
            "team_secret_template": "/described/{{.Team}}/{{.Secret}}",
            "shared_path": "/described/shared",
        }})
    );
    server.stop().await;
}

async fn a_secrets_manager_var_missing_everywhere_is_undefined(backend: Backend) {
    let prefix = unique_prefix();
    let config =
        settings(&prefix).check(AwsService::SecretsManager, &|key| AwsService::SecretsManager.flag(key)).unwrap();
    let (server, token, _work) =
        server_with(backend, Arc::new(SecretsManager::new(config)), RETRY_ATTEMPTS, RETRY_INTERVAL).await;
    server.set_and_unpause(&token, "nothing", &format!("jobs:\n{}", checking_job("j", &[("absent", "")]))).await;
    let (_, watched) = server.trigger_and_watch(&token, "nothing", "j").await;
    assert_eq!(watched.status(), "errored", "{}", watched.output());
    assert!(watched.output().contains("undefined variable: ((absent))"), "{}", watched.output());
    server.stop().await;
}

on_both_backends!(
    aws_vars_run_end_to_end,
    a_secrets_manager_var_missing_everywhere_is_undefined,
    info_describes_the_manager_without_its_keys
);
