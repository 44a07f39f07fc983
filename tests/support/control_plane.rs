//! The project's test Kubernetes control plane (`scripts/k8s-up.sh`:
//! etcd, kube-apiserver, controller-manager, scheduler; no node agent, as
//! no pod needs to run) for the tests of one test binary: started on first
//! use, stopped by `scripts/k8s-down.sh` when the test process exits.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// The started control plane's directory (certificates, kubeconfigs, `env`).
static STARTED: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn start() -> Result<PathBuf, String> {
    // The checkout, read at run time (see `source_root` in tests/support).
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("tests run under cargo"));
    let dir = std::env::temp_dir().join(format!("atc-test-k8s-{}", std::process::id()));
    let output = Command::new(root.join("scripts/k8s-up.sh"))
        .arg(&dir)
        .env("ATC_K8S_NO_NODE", "1")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run scripts/k8s-up.sh: {e}"))?;
    super::on_exit::run_when_this_process_exits(&format!(
        "{} {} >/dev/null 2>&1",
        root.join("scripts/k8s-down.sh").display(),
        dir.display()
    ));
    if !output.status.success() {
        return Err(format!("scripts/k8s-up.sh failed ({}); its errors are above", output.status));
    }
    Ok(dir)
}

fn dir() -> PathBuf {
    STARTED.get_or_init(start).clone().unwrap_or_else(|e| panic!("{e}"))
}

/// The administrator's kubeconfig.
pub fn admin_kubeconfig() -> PathBuf {
    dir().join("admin.kubeconfig")
}

/// The API server's URL and the CA file that signed its certificate.
pub fn api_server() -> (String, PathBuf) {
    let env = std::fs::read_to_string(dir().join("env")).expect("k8s-up.sh writes env");
    let url = env.lines().find_map(|line| line.strip_prefix("K8S_API_SERVER=")).expect("K8S_API_SERVER in env");
    (url.to_string(), dir().join("pki/ca.crt"))
}

/// A client with the administrator's kubeconfig.
pub async fn admin() -> Client {
    let kubeconfig = Kubeconfig::read_from(admin_kubeconfig()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::try_from(config).unwrap()
}

/// Creates namespace `name`.
pub async fn namespace(client: &Client, name: &str) {
    let namespace: Namespace = serde_json::from_value(serde_json::json!({ "metadata": { "name": name } })).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await.unwrap();
}

/// Creates Secret `name` in `namespace` with `data` (as `stringData`).
pub async fn secret(client: &Client, namespace: &str, name: &str, data: &[(&str, &str)]) {
    let data: serde_json::Map<String, serde_json::Value> =
        data.iter().map(|(key, value)| (key.to_string(), serde_json::Value::String(value.to_string()))).collect();
    let secret: Secret =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": name }, "stringData": data })).unwrap();
    Api::<Secret>::namespaced(client.clone(), namespace).create(&PostParams::default(), &secret).await.unwrap();
}

/// Creates service account `name` in `namespace` and a token for it.
pub async fn service_account_token(client: &Client, namespace: &str, name: &str) -> String {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let account: ServiceAccount = serde_json::from_value(serde_json::json!({ "metadata": { "name": name } })).unwrap();
    accounts.create(&PostParams::default(), &account).await.unwrap();
    let request: TokenRequest =
        serde_json::from_value(serde_json::json!({ "spec": { "audiences": [], "expirationSeconds": 3600 } })).unwrap();
    let issued = accounts.create_token_request(name, &PostParams::default(), &request).await.unwrap();
    issued.status.and_then(|status| status.token).expect("a token request answers with a token")
}

/// Deletes service account `name` (its tokens stop being valid).
pub async fn delete_service_account(client: &Client, namespace: &str, name: &str) {
    use k8s_openapi::api::core::v1::ServiceAccount;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    accounts.delete(name, &Default::default()).await.unwrap();
}

/// Binds service account `name` of `namespace` to `system:auth-delegator`
/// (it may then ask the API server to review tokens: TokenReview).
pub async fn bind_auth_delegator(client: &Client, namespace: &str, name: &str) {
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": { "name": format!("{namespace}-{name}-auth-delegator") },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator" },
        "subjects": [{ "kind": "ServiceAccount", "name": name, "namespace": namespace }],
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone()).create(&PostParams::default(), &binding).await.unwrap();
}
