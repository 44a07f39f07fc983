//! Authorization is real: a service account's token (from TokenRequest, as
//! a pod or the Helm chart's atc gets one) can do what its Role grants and
//! nothing else; and the Role README.md gives the Kubernetes runtime is
//! enough for the shared runtime suite (`runtime::RBAC_CHECKS`).

use anyhow::{Context, bail, ensure};
use atc::runtime::k8s::K8sRuntime;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{ListParams, PostParams};
use kube::config::AuthInfo;
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::cluster::{Cluster, IMAGE, source_root};

pub async fn a_token_whose_role_cannot_create_pods_is_refused(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-rbac").await?;
    let rules = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]);
    let reader = client_with_role(cluster, &namespace, "reader", rules).await?;
    let create = PostParams::default();
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

/// A client for a new service account `account` of `namespace` whose Role
/// there grants `rules` (JSON) and nothing else, with the token
/// TokenRequest issues it (as a pod or the Helm chart's atc gets one).
pub async fn client_with_role(
    cluster: &Cluster,
    namespace: &str,
    account: &str,
    rules: Value,
) -> anyhow::Result<Client> {
    let admin = cluster.client.clone();
    let create = PostParams::default();
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    accounts.create(&create, &serde_json::from_value(json!({"metadata": {"name": account}}))?).await?;
    let role = json!({"metadata": {"name": account}, "rules": rules});
    Api::<Role>::namespaced(admin.clone(), namespace).create(&create, &serde_json::from_value(role)?).await?;
    let binding = json!({
        "metadata": {"name": account},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    });
    Api::<RoleBinding>::namespaced(admin, namespace).create(&create, &serde_json::from_value(binding)?).await?;

    let request: TokenRequest = serde_json::from_value(json!({"spec": {"expirationSeconds": 3600}}))?;
    let issued = accounts.create_token_request(account, &create, &request).await?;
    let token = issued.status.and_then(|status| status.token).context("TokenRequest returned no token")?;
    let mut config = cluster.config.clone();
    config.auth_info = AuthInfo { token: Some(token.into()), ..Default::default() };
    Ok(Client::try_from(config)?)
}

/// The Role's rules as README.md's table under "The runtime needs these
/// permissions" lists them: a row per resource, its verbs the quoted words
/// before any remark in parentheses.
fn readme_role_rules() -> anyhow::Result<Value> {
    let path = source_root().join("README.md");
    let readme = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let table = readme
        .split_once("The runtime needs these permissions")
        .context("README.md no longer has the runtime's Role")?
        .1;
    let quoted = |cell: &str| -> Vec<String> { cell.split('`').skip(1).step_by(2).map(str::to_string).collect() };
    let mut rules = Vec::new();
    for row in table.lines().skip_while(|line| !line.starts_with('|')).take_while(|line| line.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let [_, resource, verbs, ..] = cells.as_slice() else { continue };
        let verbs = quoted(verbs.split('(').next().unwrap_or_default());
        if let ([resource], false) = (quoted(resource).as_slice(), verbs.is_empty()) {
            rules.push(json!({"apiGroups": [""], "resources": [resource], "verbs": verbs}));
        }
    }
    ensure!(!rules.is_empty(), "no rules in README.md's table of the runtime's Role");
    Ok(Value::Array(rules))
}

static RESTRICTED: OnceCell<K8sRuntime> = OnceCell::const_new();

/// A Kubernetes runtime, set up as the shared suite's, connected with the
/// token of a service account bound to exactly the README's Role (not the
/// administrator's kubeconfig), in a namespace of its own.
pub async fn runtime_with_the_readme_role(cluster: &Cluster) -> anyhow::Result<&'static K8sRuntime> {
    RESTRICTED
        .get_or_try_init(|| async {
            let namespace = cluster.namespace(&format!("rbac-suite-{}", std::process::id())).await?;
            let client = client_with_role(cluster, &namespace, "atc", readme_role_rules()?).await?;
            let mut options = crate::runtime::shared(cluster).await?.options.clone();
            options.namespace = namespace;
            anyhow::Ok(K8sRuntime::new(client, options).await?)
        })
        .await
}
