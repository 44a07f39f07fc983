//! Lookups in CredHub (the fake of `tests/support/credhub.rs`: no CredHub
//! server can be had here), as the real binary configured by its
//! `--credhub-*` flags traces and counts them: the same checks as Vault's.

use serde_json::json;

use crate::credhub::{CLIENT_ID, CLIENT_SECRET, FakeCredHub};
use crate::secrets::SECRET;
use crate::vault::lookups_are_traced_cached_and_never_show_the_secret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credhub_lookups_are_traced_cached_and_never_show_the_secret() {
    let fake = FakeCredHub::start().await;
    fake.set("/concourse/main/show/topsecret", "password", json!(SECRET));
    let args = ["--credhub-url", &fake.url, "--credhub-client-id", CLIENT_ID, "--credhub-client-secret", CLIENT_SECRET];
    lookups_are_traced_cached_and_never_show_the_secret("credhub", "GET", &args, &[]).await;
}
