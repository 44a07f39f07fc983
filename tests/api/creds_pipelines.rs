//! What the credential manager tests share: a server whose `((vars))` come
//! from one manager, and a job whose task checks each var's value.

use std::sync::Arc;
use std::time::Duration;

use atc::creds::{CredentialManager, RetryOptions};

use crate::support::{Backend, TestServer, local_runtime, server_options_with};

/// A server (and its admin token and work dir) reading vars from
/// `credentials`, retrying a failed lookup `attempts` times `interval` apart.
pub async fn server_with(
    backend: Backend,
    credentials: Arc<dyn CredentialManager>,
    attempts: u32,
    interval: Duration,
) -> (TestServer, String, tempfile::TempDir) {
    let (runtime, work) = local_runtime().await;
    let mut options = server_options_with(runtime, &[]);
    options.credentials = credentials;
    options.secret_policy.retry = RetryOptions { attempts, interval };
    let server = TestServer::start_with(backend, options).await;
    let token = server.admin_token().await;
    (server, token, work)
}

/// A job whose task succeeds only when each `((var))` has its value.
pub fn checking_job(name: &str, checks: &[(&str, &str)]) -> String {
    let script: Vec<String> =
        checks.iter().map(|(var, expected)| format!("test \"(({var}))\" = \"{expected}\"")).collect();
    format!(
        "- name: {name}\n  plan:\n  - task: check\n    config:\n      platform: linux\n      run: {{path: sh, args: [-ec, '{} && echo all vars match']}}\n",
        script.join(" && ")
    )
}
