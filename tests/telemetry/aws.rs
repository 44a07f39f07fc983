//! Lookups in AWS SSM Parameter Store and Secrets Manager (a real
//! `moto_server`, reached through the SDK's own `AWS_ENDPOINT_URL`), as the
//! real binary configured by its `--aws-*` flags traces and counts them:
//! the same checks as Vault's (`vault.rs`).

use crate::moto::{self, ACCESS_KEY, REGION, SECRET_KEY};
use crate::secrets::SECRET;
use crate::vault::lookups_are_traced_cached_and_never_show_the_secret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssm_lookups_are_traced_cached_and_never_show_the_secret() {
    // A SecureString at Concourse's default pipeline template.
    moto::put_parameter("/concourse/main/show/topsecret", SECRET, true).await;
    let url = moto::url();
    let args = ["--aws-ssm-region", REGION, "--aws-ssm-access-key", ACCESS_KEY, "--aws-ssm-secret-key", SECRET_KEY];
    lookups_are_traced_cached_and_never_show_the_secret("ssm", "POST", &args, &[("AWS_ENDPOINT_URL", &url)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secretsmanager_lookups_are_traced_cached_and_never_show_the_secret() {
    moto::create_secret("/concourse/main/topsecret", SECRET).await;
    let url = moto::url();
    let env = [
        ("AWS_ENDPOINT_URL", url.as_str()),
        ("CONCOURSE_AWS_SECRETSMANAGER_REGION", REGION),
        ("CONCOURSE_AWS_SECRETSMANAGER_ACCESS_KEY", ACCESS_KEY),
        ("CONCOURSE_AWS_SECRETSMANAGER_SECRET_KEY", SECRET_KEY),
    ];
    lookups_are_traced_cached_and_never_show_the_secret("secretsmanager", "POST", &[], &env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_aws_errors_the_step_naming_the_manager() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{closed}");
    let args = [
        "--aws-ssm-region",
        REGION,
        "--aws-ssm-access-key",
        ACCESS_KEY,
        "--aws-ssm-secret-key",
        SECRET_KEY,
        "--secret-retry-interval",
        "100ms",
    ];
    let atc = crate::atc_process::Atc::quickstart(&args, &[("AWS_ENDPOINT_URL", &endpoint)]);
    let client = crate::builds::Client::login(&atc).await;
    client.set_and_unpause("show", PIPELINE_USING_TOPSECRET).await;
    let (build, events) =
        client.trigger("show", "show", &format!("00-{}-{}-01", crate::random_hex(16), crate::random_hex(8))).await;
    assert_eq!(build["status"], "errored", "{events}");
    assert!(events.contains("((topsecret))") && events.contains("ssm credential manager is unavailable"), "{events}");
    atc.terminate();
}

const PIPELINE_USING_TOPSECRET: &str = "jobs:\n- name: show\n  plan:\n  - task: show\n    config: {platform: linux, params: {SHOWN: ((topsecret))}, run: {path: 'true'}}\n";
