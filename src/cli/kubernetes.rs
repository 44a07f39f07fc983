//! `atc web --kubernetes-*`: the Kubernetes runtime's flags. A namespace
//! switches the runtime from local processes to pods.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use crate::kube_access::{ClusterAccess, KubeClient};
use crate::runtime::k8s::{K8sRuntime, K8sRuntimeOptions};

#[derive(Debug, Clone, Args)]
pub struct KubernetesFlags {
    /// Run every step as a pod in this namespace (the Kubernetes runtime) instead of as a local process.
    #[arg(long, env = "CONCOURSE_KUBERNETES_NAMESPACE", value_name = "NAMESPACE")]
    pub kubernetes_namespace: Option<String>,

    /// The kubeconfig to reach the cluster with [default: the in-cluster service account].
    #[arg(long, env = "CONCOURSE_KUBERNETES_KUBECONFIG", value_name = "FILE")]
    pub kubernetes_kubeconfig: Option<PathBuf>,

    /// How long a scheduled step pod may take to start (image pulls, inputs staged).
    #[arg(long, env = "CONCOURSE_KUBERNETES_POD_STARTUP_TIMEOUT", default_value = "5m", value_parser = super::flags::parse_positive_duration, value_name = "DURATION")]
    pub kubernetes_pod_startup_timeout: Duration,

    /// How long a step pod may wait for a node.
    #[arg(long, env = "CONCOURSE_KUBERNETES_POD_SCHEDULING_TIMEOUT", default_value = "15m", value_parser = super::flags::parse_positive_duration, value_name = "DURATION")]
    pub kubernetes_pod_scheduling_timeout: Duration,

    /// A Secret of the namespace to pull images with. Repeatable, or comma-separated.
    #[arg(long, env = "CONCOURSE_KUBERNETES_IMAGE_PULL_SECRET", value_delimiter = ',', value_name = "NAME")]
    pub kubernetes_image_pull_secret: Vec<String>,

    /// The service account step pods run as [default: the namespace's default].
    #[arg(long, env = "CONCOURSE_KUBERNETES_SERVICE_ACCOUNT", value_name = "NAME")]
    pub kubernetes_service_account: Option<String>,

    /// The storage class of the claims atc creates (one per build, and the shared atc-artifacts) [default: the cluster's default].
    #[arg(long, env = "CONCOURSE_KUBERNETES_STORAGE_CLASS", value_name = "NAME")]
    pub kubernetes_storage_class: Option<String>,

    /// The size of each claim atc creates (one per build, and the shared atc-artifacts), as a Kubernetes quantity.
    #[arg(long, env = "CONCOURSE_KUBERNETES_WORKSPACE_SIZE", default_value = "10Gi", value_name = "QUANTITY")]
    pub kubernetes_workspace_size: String,

    /// A ReadWriteMany claim of the namespace for every build's artifacts and step roots, instead of a claim per build (and for uploads, checks and task caches, instead of atc-artifacts).
    #[arg(long, env = "CONCOURSE_KUBERNETES_ARTIFACT_STORE_CLAIM", value_name = "NAME")]
    pub kubernetes_artifact_store_claim: Option<String>,

    /// A ReadWriteMany claim of the namespace for task caches, instead of the artifact claim.
    #[arg(long, env = "CONCOURSE_KUBERNETES_CACHE_CLAIM", value_name = "NAME")]
    pub kubernetes_cache_claim: Option<String>,

    /// The image of a base resource type, as NAME=IMAGE (defaults: concourse/NAME-resource for time, registry-image, git, s3, docker-image, pool and semver). Repeatable.
    #[arg(long, env = "CONCOURSE_KUBERNETES_BASE_RESOURCE_TYPE", value_delimiter = ',', value_parser = parse_pair, value_name = "NAME=IMAGE")]
    pub kubernetes_base_resource_type: Vec<(String, String)>,

    /// The image with sh, tar, coreutils and atc: the artifact helper pod, the fetch-inputs init container and the built-in resource types (mock) run in it.
    #[arg(
        long,
        env = "CONCOURSE_KUBERNETES_HELPER_IMAGE",
        default_value = "concourse-atc/atc:latest",
        value_name = "IMAGE"
    )]
    pub kubernetes_helper_image: String,

    /// Where atc is in the helper image.
    #[arg(
        long,
        env = "CONCOURSE_KUBERNETES_HELPER_ATC_PATH",
        default_value = "/usr/local/bin/atc",
        value_name = "PATH"
    )]
    pub kubernetes_helper_atc_path: String,

    /// A node label step pods must match, as KEY=VALUE. Repeatable, or comma-separated.
    #[arg(long, env = "CONCOURSE_KUBERNETES_NODE_SELECTOR", value_delimiter = ',', value_parser = parse_pair, value_name = "KEY=VALUE")]
    pub kubernetes_node_selector: Vec<(String, String)>,

    /// A taint step pods tolerate, as KEY[=VALUE][:EFFECT]. Repeatable, or comma-separated.
    #[arg(long, env = "CONCOURSE_KUBERNETES_TOLERATION", value_delimiter = ',', value_parser = parse_toleration, value_name = "KEY[=VALUE][:EFFECT]")]
    pub kubernetes_toleration: Vec<Value>,
}

impl KubernetesFlags {
    /// The Kubernetes runtime when a namespace is given, with the client it
    /// reaches the cluster with (for the credential manager to share).
    pub async fn runtime(&self) -> anyhow::Result<Option<(K8sRuntime, KubeClient)>> {
        let Some(namespace) = &self.kubernetes_namespace else { return Ok(None) };
        let mut options = K8sRuntimeOptions::new(namespace);
        options.pod_startup_timeout = self.kubernetes_pod_startup_timeout;
        options.pod_scheduling_timeout = self.kubernetes_pod_scheduling_timeout;
        options.image_pull_secrets = self.kubernetes_image_pull_secret.clone();
        options.service_account = self.kubernetes_service_account.clone();
        options.storage_class = self.kubernetes_storage_class.clone();
        options.workspace_size = self.kubernetes_workspace_size.clone();
        options.artifact_store_claim = self.kubernetes_artifact_store_claim.clone();
        options.cache_claim = self.kubernetes_cache_claim.clone();
        options.base_resource_types.extend(self.kubernetes_base_resource_type.iter().cloned());
        options.helper_image = self.kubernetes_helper_image.clone();
        options.helper_atc_path = self.kubernetes_helper_atc_path.clone();
        options.node_selector = self.kubernetes_node_selector.iter().cloned().collect::<BTreeMap<_, _>>();
        options.tolerations = self.kubernetes_toleration.clone();
        let access = match &self.kubernetes_kubeconfig {
            Some(path) => ClusterAccess::Kubeconfig(path.clone()),
            None => ClusterAccess::InCluster,
        };
        let cannot_start = |err: String| {
            anyhow::anyhow!("--kubernetes-namespace {namespace}: cannot start the Kubernetes runtime: {err}")
        };
        let client = access.client().await.map_err(cannot_start)?;
        let runtime =
            K8sRuntime::new(client.client.clone(), options).await.map_err(|err| cannot_start(err.to_string()))?;
        tracing::info!(namespace, "Kubernetes runtime ready");
        Ok(Some((runtime, client)))
    }
}

fn parse_pair(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((key, value)) if !key.is_empty() && !value.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("'{value}' is not KEY=VALUE")),
    }
}

/// `KEY[=VALUE][:EFFECT]` as a Kubernetes toleration.
fn parse_toleration(value: &str) -> Result<Value, String> {
    let (taint, effect) = match value.rsplit_once(':') {
        Some((taint, effect)) => (taint, Some(effect)),
        None => (value, None),
    };
    if let Some(effect) = effect.filter(|e| !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(e)) {
        return Err(format!("'{effect}' is not a taint effect (NoSchedule, PreferNoSchedule or NoExecute)"));
    }
    let mut toleration = match taint.split_once('=') {
        Some((key, value)) => json!({"key": key, "operator": "Equal", "value": value}),
        None => json!({"key": taint, "operator": "Exists"}),
    };
    if toleration["key"].as_str().is_none_or(str::is_empty) {
        return Err(format!("'{value}' names no taint key"));
    }
    if let Some(effect) = effect {
        toleration["effect"] = json!(effect);
    }
    Ok(toleration)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{parse_pair, parse_toleration};

    #[test]
    fn pairs_and_tolerations_are_read_or_refused_clearly() {
        assert_eq!(parse_pair("git=my/git").unwrap(), ("git".into(), "my/git".into()));
        assert!(parse_pair("git").unwrap_err().contains("KEY=VALUE"));
        assert_eq!(
            parse_toleration("dedicated=ci:NoSchedule").unwrap(),
            json!({"key": "dedicated", "operator": "Equal", "value": "ci", "effect": "NoSchedule"})
        );
        assert_eq!(parse_toleration("gpu").unwrap(), json!({"key": "gpu", "operator": "Exists"}));
        assert!(parse_toleration("gpu:Sometimes").unwrap_err().contains("Sometimes"));
        assert!(parse_toleration("=x").is_err());
    }
}
