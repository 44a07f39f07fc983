//! Lookups in Kubernetes Secrets on the test control plane, as the real
//! binary configured by `--kubernetes-config-path` traces and counts them:
//! the same checks as Vault's (`vault.rs`).

use crate::control_plane;
use crate::secrets::SECRET;
use crate::vault::lookups_are_traced_cached_and_never_show_the_secret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_lookups_are_traced_cached_and_never_show_the_secret() {
    let prefix = format!("atc-telemetry-{}-", std::process::id());
    let client = control_plane::admin().await;
    let namespace = format!("{prefix}main");
    control_plane::namespace(&client, &namespace).await;
    control_plane::secret(&client, &namespace, "show.topsecret", &[("value", SECRET)]).await;
    let kubeconfig = control_plane::admin_kubeconfig().display().to_string();
    let args = ["--kubernetes-config-path", &kubeconfig, "--kubernetes-namespace-prefix", &prefix];
    lookups_are_traced_cached_and_never_show_the_secret("kubernetes", "GET", &args, &[]).await;
}
