//! Authorization is real: a service account's token (from TokenRequest, as
//! a pod or the Helm chart's atc gets one) can do what its Role grants and
//! nothing else.

use anyhow::{Context, bail, ensure};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{ListParams, PostParams};
use kube::config::AuthInfo;
use kube::{Api, Client};
use serde_json::json;

use crate::cluster::{Cluster, IMAGE};

pub async fn a_token_whose_role_cannot_create_pods_is_refused(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-rbac").await?;
    let admin = cluster.client.clone();
    let create = PostParams::default();
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &namespace);
    accounts.create(&create, &serde_json::from_value(json!({"metadata": {"name": "reader"}}))?).await?;
    let role = json!({
        "metadata": {"name": "read-pods"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
    });
    Api::<Role>::namespaced(admin.clone(), &namespace).create(&create, &serde_json::from_value(role)?).await?;
    let binding = json!({
        "metadata": {"name": "reader-reads-pods"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-pods"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
    });
    Api::<RoleBinding>::namespaced(admin.clone(), &namespace)
        .create(&create, &serde_json::from_value(binding)?)
        .await?;

    let request: TokenRequest = serde_json::from_value(json!({"spec": {"expirationSeconds": 600}}))?;
    let issued = accounts.create_token_request("reader", &create, &request).await?;
    let token = issued.status.and_then(|status| status.token).context("TokenRequest returned no token")?;

    let mut config = cluster.config.clone();
    config.auth_info = AuthInfo { token: Some(token.into()), ..Default::default() };
    let reader = Client::try_from(config)?;
    let pods: Api<Pod> = Api::namespaced(reader, &namespace);
    pods.list(&ListParams::default()).await.context("the token may list pods")?;
    let pod = json!({
        "metadata": {"name": "forbidden"},
        "spec": {"containers": [{"name": "main", "image": IMAGE, "command": ["true"]}]},
    });
    match pods.create(&create, &serde_json::from_value(pod)?).await {
        Err(kube::Error::Api(refusal)) => {
            ensure!(refusal.code == 403, "refused with {} instead of 403: {}", refusal.code, refusal.message);
            Ok(())
        }
        Ok(_) => bail!("a token without `create pods` created a pod"),
        Err(other) => bail!("refused, but not by authorization: {other}"),
    }
}
