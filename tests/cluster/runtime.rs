//! The shared runtime suite (`tests/runtime/suite.rs`, the same code the
//! local runtime passes) on the Kubernetes runtime, in a namespace of its
//! own. Steps run in `busybox`; the helper image is `atc.test/helper`, a
//! host image in which atc is where cargo built it.

use anyhow::Context;
use atc::runtime::ImageSpec;
use atc::runtime::k8s::{K8sRuntime, K8sRuntimeOptions};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::PostParams;
use kube::config::AuthInfo;
use serde_json::json;
use tokio::sync::OnceCell;

use crate::cluster::Cluster;

#[allow(dead_code, reason = "shared with tests/runtime, whose local-runtime helpers are not used here")]
#[path = "../runtime/support.rs"]
pub mod support;

#[allow(unused_macros, reason = "runtime_suite! makes #[tokio::test]s; this target calls the cases itself")]
#[path = "../runtime/suite.rs"]
#[macro_use]
pub mod suite;

use support::Shell;

/// The runtime every case uses, and how it was made.
pub struct Shared {
    pub runtime: K8sRuntime,
    pub options: K8sRuntimeOptions,
    /// Bound to the Role of `deploy/kubernetes-role.yaml` only.
    pub client: kube::Client,
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

/// One runtime for every case, made on first use.
pub async fn shared(cluster: &Cluster) -> anyhow::Result<&'static Shared> {
    SHARED
        .get_or_try_init(|| async {
            // Named for this run: a borrowed cluster (ATC_TEST_K8S_DIR) keeps earlier runs' caches.
            let namespace = cluster.namespace(&format!("runtime-suite-{}", std::process::id())).await?;
            let mut options = K8sRuntimeOptions::new(&namespace);
            options.helper_image = "atc.test/helper".into();
            options.helper_atc_path = env!("CARGO_BIN_EXE_atc").into();
            let client = client_with_the_documented_role(cluster, &namespace).await?;
            let runtime = K8sRuntime::new(client.clone(), options.clone()).await?;
            anyhow::Ok(Shared { runtime, options, client })
        })
        .await
}

/// A client whose token (a service account's, from TokenRequest) is bound
/// to exactly the Role the README documents, in `namespace` only: the
/// runtime is tested with no more rights than an operator grants it.
async fn client_with_the_documented_role(cluster: &Cluster, namespace: &str) -> anyhow::Result<kube::Client> {
    client_with_role(cluster, namespace, documented_role()?).await
}

/// The Role of `deploy/kubernetes-role.yaml`.
pub fn documented_role() -> anyhow::Result<Role> {
    let text = std::fs::read_to_string(crate::cluster::source_root().join("deploy/kubernetes-role.yaml"))?;
    Ok(serde_saphyr::from_str(&text)?)
}

/// A client whose token is bound to `role` in `namespace` only.
pub async fn client_with_role(cluster: &Cluster, namespace: &str, role: Role) -> anyhow::Result<kube::Client> {
    let role_name = role.metadata.name.clone().unwrap_or_default();
    let admin = cluster.client.clone();
    let create = PostParams::default();
    Api::<Role>::namespaced(admin.clone(), namespace).create(&create, &role).await?;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    accounts.create(&create, &serde_json::from_value(json!({"metadata": {"name": "atc"}}))?).await?;
    let binding = json!({
        "metadata": {"name": "atc-runtime"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": "atc", "namespace": namespace}],
    });
    Api::<RoleBinding>::namespaced(admin, namespace).create(&create, &serde_json::from_value(binding)?).await?;
    let request: TokenRequest = serde_json::from_value(json!({"spec": {"expirationSeconds": 3600}}))?;
    let issued = accounts.create_token_request("atc", &create, &request).await?;
    let token = issued.status.and_then(|status| status.token).context("TokenRequest returned no token")?;
    let mut config = cluster.config.clone();
    config.auth_info = AuthInfo { token: Some(token.into()), ..Default::default() };
    Ok(kube::Client::try_from(config)?)
}

pub fn shell() -> Shell {
    Shell { image: Some(image("busybox")) }
}

/// A task image from a registry-image `image_resource`.
pub fn image(repository: &str) -> ImageSpec {
    let source = json!({"repository": repository});
    ImageSpec::Resource { type_: "registry-image".into(), source, params: json!({}), version: None }
}

/// A check per suite case, and `CHECKS` naming them.
macro_rules! suite_checks {
    (; $($case:ident),* $(,)?) => {
        $(
            pub async fn $case(cluster: &Cluster) -> anyhow::Result<()> {
                let shared = shared(cluster).await?;
                suite::$case(&shared.runtime, &shell()).await;
                Ok(())
            }
        )*
        pub const CHECKS: &[(&str, crate::Check)] = &[
            $((concat!("runtime::", stringify!($case)), (|cluster| Box::pin($case(cluster))) as crate::Check)),*
        ];
    };
}

with_suite_cases!(suite_checks!());
