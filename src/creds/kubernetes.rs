//! The `kubernetes` credential manager: `((name))` is the Secret
//! `<pipeline>.<name>`, else `<name>`, in namespace `<prefix><team>`
//! (then `<name>` in `<prefix><shared suffix>` when one is set), as in
//! Concourse: its `value` key, or all its keys as fields.
//!
//! atc reaches the cluster with `--kubernetes-in-cluster` (its pod's
//! service account) or `--kubernetes-config-path` (a kubeconfig). These
//! are Concourse's flags for secrets; the JetBridge runtime's
//! `--kubernetes-kubeconfig` is a separate setting for running steps, and
//! may name another cluster. When both reach the cluster the same way, the
//! manager uses the runtime's client ([`crate::kube_access`]).

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::config::Kubeconfig;
use opentelemetry::trace::FutureExt;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use super::endpoint::Endpoint;
use super::{CredentialManager, LookupError, LookupFuture, Secret};
use crate::config::vars::VarRef;
use crate::kube_access::{ClusterAccess, KubeClient};
use crate::telemetry::spans::BackendRequest;

const NAME: &str = "kubernetes";
pub const DEFAULT_NAMESPACE_PREFIX: &str = "concourse-";
/// How long one lookup, retries included, may take (Concourse has no flag for it).
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The settings as given, before they are checked.
#[derive(Debug, Clone, Default)]
pub struct KubernetesSettings {
    pub in_cluster: bool,
    pub config_path: Option<PathBuf>,
    pub namespace_prefix: Option<String>,
    pub shared_namespace_suffix: Option<String>,
}

/// A setting that cannot be used, named by its flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct KubernetesConfigError {
    pub flag: &'static str,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct KubernetesConfig {
    access: ClusterAccess,
    namespace_prefix: String,
    shared_namespace_suffix: Option<String>,
}

impl KubernetesSettings {
    /// Enabled by either way of reaching the cluster, as in Concourse.
    pub fn is_configured(&self) -> bool {
        self.in_cluster || self.config_path.is_some()
    }

    /// Checks the settings; a kubeconfig is read now, so that a bad one
    /// stops start-up (the client reads it again when first used).
    pub fn check(self) -> Result<KubernetesConfig, KubernetesConfigError> {
        let access = match (self.in_cluster, &self.config_path) {
            (true, Some(_)) => {
                return Err(KubernetesConfigError {
                    flag: "--kubernetes-config-path",
                    message: "either --kubernetes-in-cluster or --kubernetes-config-path, not both".into(),
                });
            }
            (true, None) => ClusterAccess::InCluster,
            (false, Some(path)) => {
                Kubeconfig::read_from(path).map_err(|e| KubernetesConfigError {
                    flag: "--kubernetes-config-path",
                    message: format!("cannot read {}: {e}", path.display()),
                })?;
                ClusterAccess::Kubeconfig(path.clone())
            }
            (false, None) => {
                return Err(KubernetesConfigError {
                    flag: "--kubernetes-config-path",
                    message: "missing: give it or --kubernetes-in-cluster".into(),
                });
            }
        };
        Ok(KubernetesConfig {
            access,
            namespace_prefix: self.namespace_prefix.unwrap_or_else(|| DEFAULT_NAMESPACE_PREFIX.into()),
            shared_namespace_suffix: self.shared_namespace_suffix.filter(|suffix| !suffix.is_empty()),
        })
    }
}

impl KubernetesConfig {
    /// The (namespace, secret name) pairs `secret` is looked for at, in order.
    fn places(&self, team: &str, pipeline: Option<&str>, secret: &str) -> Vec<(String, String)> {
        let prefix = &self.namespace_prefix;
        let mut places = Vec::new();
        if let Some(pipeline) = pipeline {
            places.push((format!("{prefix}{team}"), format!("{pipeline}.{secret}")));
        }
        places.push((format!("{prefix}{team}"), secret.to_string()));
        if let Some(suffix) = &self.shared_namespace_suffix {
            places.push((format!("{prefix}{suffix}"), secret.to_string()));
        }
        places
    }
}

pub struct Kubernetes {
    config: KubernetesConfig,
    /// Made on first use (it needs the async runtime), unless shared.
    client: OnceCell<KubeClient>,
}

impl Kubernetes {
    /// The manager, with `shared`'s client if it reaches the cluster as the
    /// manager's settings say (the runtime's), else a client of its own.
    pub fn new(config: KubernetesConfig, shared: Option<&KubeClient>) -> Kubernetes {
        let client = match shared {
            Some(shared) if shared.access.same_as(&config.access) => {
                tracing::info!("the kubernetes credential manager shares the Kubernetes runtime's client");
                OnceCell::new_with(Some(shared.clone()))
            }
            _ => OnceCell::new(),
        };
        Kubernetes { config, client }
    }

    async fn find(&self, team: &str, pipeline: Option<&str>, secret: &str) -> Result<Option<Secret>, LookupError> {
        let KubeClient { client, cluster_url, .. } = self
            .client
            .get_or_try_init(|| self.config.access.client())
            .await
            .map_err(|message| LookupError::Permanent { manager: NAME, source: message.into() })?;
        let endpoint = Endpoint::of(cluster_url);
        for (namespace, name) in self.config.places(team, pipeline, secret) {
            let secrets: kube::Api<KubeSecret> = kube::Api::namespaced(client.clone(), &namespace);
            let span = BackendRequest {
                operation: "kubernetes get secret",
                method: "GET",
                server_address: &endpoint.host,
                server_port: endpoint.port,
                rpc: None,
            }
            .start();
            let found = secrets.get_opt(&name).with_current_context().await;
            match found {
                Ok(found) => {
                    span.ended(Some(if found.is_some() { 200 } else { 404 }), None);
                    if let Some(found) = found {
                        return Ok(Some(Secret::new(the_value(found))));
                    }
                }
                Err(error) => {
                    let status = match &error {
                        kube::Error::Api(status) => Some(status.code),
                        _ => None,
                    };
                    span.ended(status, Some(&error.to_string()));
                    let transient = status.is_none_or(super::status_is_transient);
                    let source = format!("reading secret {name} in namespace {namespace}: {error}");
                    return Err(LookupError::failed(NAME, transient, source));
                }
            }
        }
        Ok(None)
    }
}

/// The Secret's `value` key, or all its keys as fields (as text).
fn the_value(secret: KubeSecret) -> Value {
    let text = |bytes: k8s_openapi::ByteString| Value::String(String::from_utf8_lossy(&bytes.0).into_owned());
    let mut data = secret.data.unwrap_or_default();
    if let Some(value) = data.remove("value") {
        return text(value);
    }
    Value::Object(data.into_iter().map(|(key, bytes)| (key, text(bytes))).collect::<Map<_, _>>())
}

impl CredentialManager for Kubernetes {
    fn name(&self) -> &'static str {
        NAME
    }

    fn lookup<'a>(&'a self, team: &'a str, pipeline: Option<&'a str>, var: &'a VarRef) -> LookupFuture<'a> {
        Box::pin(self.find(team, pipeline, &var.path))
    }

    fn query_timeout(&self) -> Option<Duration> {
        Some(QUERY_TIMEOUT)
    }

    fn describe(&self) -> Option<Value> {
        Some(serde_json::json!({
            "in_cluster_config": self.config.access == ClusterAccess::InCluster,
            "config_path": match &self.config.access {
                ClusterAccess::Kubeconfig(path) => Some(path),
                ClusterAccess::InCluster => None,
            },
            "namespace_config": self.config.namespace_prefix,
            "namespace_shared_config": self.config.shared_namespace_suffix,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    #[test]
    fn a_var_is_looked_for_as_pipeline_dot_name_then_name_in_the_teams_namespace_then_the_shared_one() {
        let config = KubernetesConfig {
            access: ClusterAccess::InCluster,
            namespace_prefix: "concourse-".into(),
            shared_namespace_suffix: Some("shared".into()),
        };
        let place = |ns: &str, name: &str| (ns.to_string(), name.to_string());
        assert_eq!(
            config.places("main", Some("p"), "token"),
            [place("concourse-main", "p.token"), place("concourse-main", "token"), place("concourse-shared", "token")]
        );
        assert_eq!(config.places("main", None, "token")[0], place("concourse-main", "token"));
    }

    #[test]
    fn a_secret_is_its_value_key_or_all_its_keys() {
        let secret = |pairs: &[(&str, &str)]| KubeSecret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), k8s_openapi::ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..KubeSecret::default()
        };
        assert_eq!(the_value(secret(&[("value", "s"), ("other", "o")])), json!("s"));
        assert_eq!(the_value(secret(&[("user", "u"), ("pass", "p")])), json!({ "user": "u", "pass": "p" }));
    }

    #[test]
    fn a_bad_setting_is_refused_naming_its_flag() {
        let both = KubernetesSettings { in_cluster: true, config_path: Some("/x".into()), ..Default::default() };
        assert!(both.check().unwrap_err().to_string().starts_with("--kubernetes-config-path: either"));
        let missing = KubernetesSettings { config_path: Some("/nonexistent/kubeconfig".into()), ..Default::default() };
        assert!(
            missing.check().unwrap_err().to_string().starts_with("--kubernetes-config-path: cannot read /nonexistent")
        );
    }

    #[tokio::test]
    async fn the_runtimes_client_is_used_when_it_reaches_the_cluster_the_same_way() {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, KUBECONFIG).unwrap();
            path
        };
        let (runtimes, another) = (kubeconfig("runtime"), kubeconfig("another"));
        let settings =
            |path: &std::path::Path| KubernetesSettings { config_path: Some(path.into()), ..Default::default() };
        let runtime_client = ClusterAccess::Kubeconfig(runtimes.clone()).client().await.unwrap();

        let same = Kubernetes::new(settings(&runtimes).check().unwrap(), Some(&runtime_client));
        assert!(same.client.get().is_some_and(|client| client.access == runtime_client.access));
        let other = Kubernetes::new(settings(&another).check().unwrap(), Some(&runtime_client));
        assert!(other.client.get().is_none(), "another kubeconfig may carry other credentials: a client of its own");
    }

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: not-used}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"#;
}
