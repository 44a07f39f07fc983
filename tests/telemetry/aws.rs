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
