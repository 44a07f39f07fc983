//! The `kubernetes` credential manager: `((name))` is the Secret
//! `<pipeline>.<name>`, else `<name>`, in namespace `<prefix><team>`
//! (then `<name>` in `<prefix><shared suffix>` when one is set), as in
//! Concourse: its `value` key, or all its keys as fields.
//!
//! atc reaches the cluster with `--kubernetes-in-cluster` (its pod's
//! service account) or `--kubernetes-config-path` (a kubeconfig). These
//! are Concourse's flags for secrets; the JetBridge runtime's
//! `--kubernetes-kubeconfig` is a separate setting for running steps, and
//! may name another cluster.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::config::{KubeConfigOptions, Kubeconfig};
use opentelemetry::trace::FutureExt;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use super::endpoint::Endpoint;
use super::{CredentialManager, LookupError, LookupFuture, Secret};
use crate::config::vars::VarRef;
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
enum Access {
    InCluster,
    Kubeconfig(Box<Kubeconfig>),
}

#[derive(Debug, Clone)]
pub struct KubernetesConfig {
    access: Access,
    config_path: Option<PathBuf>,
    namespace_prefix: String,
    shared_namespace_suffix: Option<String>,
}

impl KubernetesSettings {
    /// Enabled by either way of reaching the cluster, as in Concourse.
    pub fn is_configured(&self) -> bool {
        self.in_cluster || self.config_path.is_some()
    }

    /// Checks the settings; a kubeconfig is read now, so that a bad one
    /// stops start-up.
    pub fn check(self) -> Result<KubernetesConfig, KubernetesConfigError> {
        let access = match (self.in_cluster, &self.config_path) {
            (true, Some(_)) => {
                return Err(KubernetesConfigError {
                    flag: "--kubernetes-config-path",
                    message: "either --kubernetes-in-cluster or --kubernetes-config-path, not both".into(),
                });
            }
            (true, None) => Access::InCluster,
            (false, Some(path)) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(|e| KubernetesConfigError {
                    flag: "--kubernetes-config-path",
                    message: format!("cannot read {}: {e}", path.display()),
                })?;
                Access::Kubeconfig(Box::new(kubeconfig))
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
            config_path: self.config_path,
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

    async fn client(&self) -> Result<(kube::Client, Endpoint), String> {
        let config = match &self.access {
            Access::InCluster => kube::Config::incluster().map_err(|e| format!("in-cluster configuration: {e}"))?,
            Access::Kubeconfig(kubeconfig) => {
                kube::Config::from_custom_kubeconfig((**kubeconfig).clone(), &KubeConfigOptions::default())
                    .await
                    .map_err(|e| format!("kubeconfig: {e}"))?
            }
        };
        let endpoint = Endpoint::of(&config.cluster_url.to_string());
        // kube's rustls needs the process-wide provider atc uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = kube::Client::try_from(config).map_err(|e| format!("cannot set up the client: {e}"))?;
        Ok((client, endpoint))
    }
}

pub struct Kubernetes {
    config: KubernetesConfig,
    /// Made on first use (it needs the async runtime).
    client: OnceCell<(kube::Client, Endpoint)>,
}

impl Kubernetes {
    pub fn new(config: KubernetesConfig) -> Kubernetes {
        Kubernetes { config, client: OnceCell::new() }
    }

    async fn find(&self, team: &str, pipeline: Option<&str>, secret: &str) -> Result<Option<Secret>, LookupError> {
        let (client, endpoint) = self
            .client
            .get_or_try_init(|| self.config.client())
            .await
            .map_err(|message| LookupError::Permanent { manager: NAME, source: message.into() })?;
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
                    let transient = status.is_none_or(|code| code >= 500 || code == 429);
                    let source = format!("reading secret {name} in namespace {namespace}: {error}").into();
                    return Err(if transient {
                        LookupError::Transient { manager: NAME, source }
                    } else {
                        LookupError::Permanent { manager: NAME, source }
                    });
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
            "in_cluster_config": matches!(self.config.access, Access::InCluster),
            "config_path": self.config.config_path,
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
            access: Access::InCluster,
            config_path: None,
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
}
