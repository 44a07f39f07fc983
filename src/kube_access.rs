//! How atc reaches a Kubernetes cluster. Two parts of atc may: the
//! Kubernetes runtime (`--kubernetes-kubeconfig`, else the pod's service
//! account) and the `kubernetes` credential manager (Concourse's
//! `--kubernetes-config-path` or `--kubernetes-in-cluster`). When both name
//! the same cluster with the same credentials, they share one client, so
//! one connection pool and one token refresh serve both.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Where a client's cluster and credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterAccess {
    /// The service account of the pod atc runs in.
    InCluster,
    /// A kubeconfig file (its current context).
    Kubeconfig(PathBuf),
}

impl ClusterAccess {
    /// Whether a client made for `other` would be the one made for `self`:
    /// both in cluster, or the same kubeconfig file however it is spelled.
    /// Two kubeconfigs that name one cluster may carry different
    /// credentials, so they do not count as the same.
    pub fn same_as(&self, other: &ClusterAccess) -> bool {
        match (self, other) {
            (ClusterAccess::InCluster, ClusterAccess::InCluster) => true,
            (ClusterAccess::Kubeconfig(a), ClusterAccess::Kubeconfig(b)) => canonical(a) == canonical(b),
            _ => false,
        }
    }

    /// A client for the cluster, with its API server's URL.
    pub async fn client(&self) -> Result<KubeClient, String> {
        let config = match self {
            ClusterAccess::InCluster => {
                kube::Config::incluster().map_err(|e| format!("in-cluster configuration: {e}"))?
            }
            ClusterAccess::Kubeconfig(path) => {
                let kubeconfig =
                    Kubeconfig::read_from(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
            }
        };
        let cluster_url = config.cluster_url.to_string();
        // kube's rustls needs the process-wide provider the rest of atc uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = kube::Client::try_from(config).map_err(|e| format!("cannot set up the client: {e}"))?;
        Ok(KubeClient { access: self.clone(), client, cluster_url })
    }
}

/// A client made for one [`ClusterAccess`], for any part of atc that
/// reaches the cluster the same way.
#[derive(Clone)]
pub struct KubeClient {
    pub access: ClusterAccess,
    pub client: kube::Client,
    /// The API server's URL, for spans.
    pub cluster_url: String,
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_kubeconfig_however_spelled_is_the_same_access() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kubeconfig");
        std::fs::write(&file, "").unwrap();
        let spelled_otherwise = dir.path().join(".").join("kubeconfig");
        let access = ClusterAccess::Kubeconfig(file.clone());
        assert!(access.same_as(&ClusterAccess::Kubeconfig(spelled_otherwise)));
        assert!(ClusterAccess::InCluster.same_as(&ClusterAccess::InCluster));
        assert!(!access.same_as(&ClusterAccess::InCluster));
        assert!(!access.same_as(&ClusterAccess::Kubeconfig(dir.path().join("another"))));
    }
}
