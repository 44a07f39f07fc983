//! `((vars))` from Kubernetes Secrets on the project's real test control
//! plane (`scripts/k8s-up.sh`): `<pipeline>.<name>` then `<name>` in the
//! team's namespace, then the shared namespace; a Secret's `value` key or
//! all its keys as fields.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use atc::creds::kubernetes::{Kubernetes, KubernetesSettings};
use atc::kube_access::{ClusterAccess, KubeClient};

use crate::creds_pipelines::{checking_job, server_with};
use crate::on_both_backends;
use crate::support::control_plane;
use crate::support::{Backend, TestServer, local_runtime, server_options_with};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A namespace prefix no other test (or backend) uses.
pub fn unique_prefix() -> String {
    format!("atc-{}-{}-", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

/// atc's Kubernetes manager with the administrator's kubeconfig, using
/// `runtime_client` when that reaches the cluster the same way.
pub fn kubernetes(
    prefix: &str,
    shared_suffix: Option<&str>,
    runtime_client: Option<&KubeClient>,
) -> Arc<dyn atc::creds::CredentialManager> {
    let settings = KubernetesSettings {
        config_path: Some(control_plane::admin_kubeconfig()),
        namespace_prefix: Some(prefix.into()),
        shared_namespace_suffix: shared_suffix.map(str::to_string),
        ..KubernetesSettings::default()
    };
    Arc::new(Kubernetes::new(settings.check().unwrap(), runtime_client))
}

async fn kubernetes_vars_run_end_to_end(backend: Backend) {
    let prefix = unique_prefix();
    let team = format!("{prefix}main");
    let shared = format!("{prefix}shared");
    let client = control_plane::admin().await;
    control_plane::namespace(&client, &team).await;
    control_plane::namespace(&client, &shared).await;
    control_plane::secret(&client, &team, "kubey.greeting", &[("value", "hello from the pipeline secret")]).await;
    // The pipeline's secret wins over the team's of the same name.
    control_plane::secret(&client, &team, "greeting", &[("value", "the team's, not used")]).await;
    control_plane::secret(&client, &team, "team-wide", &[("value", "hello from the team secret")]).await;
    control_plane::secret(&client, &team, "login", &[("user", "admin"), ("password", "pw")]).await;
    control_plane::secret(&client, &shared, "everyone", &[("value", "hello from the shared namespace")]).await;

    let (runtime, _work) = local_runtime().await;
    let mut options = server_options_with(runtime, &[]);
    // As `atc web` does when its Kubernetes runtime uses the same kubeconfig:
    // the lookups go through the runtime's client.
    let access = ClusterAccess::Kubeconfig(control_plane::admin_kubeconfig());
    let runtime_client = access.client().await.unwrap();
    options.credentials = kubernetes(&prefix, Some("shared"), Some(&runtime_client));
    let server = TestServer::start_with(backend, options).await;
    let token = server.admin_token().await;
    let yaml = format!(
        "jobs:\n{}{}",
        checking_job(
            "uses-kubernetes",
            &[
                ("greeting", "hello from the pipeline secret"),
                ("team-wide", "hello from the team secret"),
                ("login.user", "admin"),
                ("login.password", "pw"),
                ("everyone", "hello from the shared namespace"),
            ]
        ),
        checking_job("uses-a-missing-var", &[("not-in-kubernetes", "")]),
    );
    server.set_and_unpause(&token, "kubey", &yaml).await;
    let (_, watched) = server.trigger_and_watch(&token, "kubey", "uses-kubernetes").await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.output());
    assert!(watched.log().contains("all vars match"), "{}", watched.output());
    let (_, missing) = server.trigger_and_watch(&token, "kubey", "uses-a-missing-var").await;
    assert_eq!(missing.status(), "errored", "{}", missing.output());
    assert!(missing.output().contains("undefined variable: ((not-in-kubernetes))"), "{}", missing.output());
    server.stop().await;
}

on_both_backends!(kubernetes_vars_run_end_to_end);

async fn an_unreachable_cluster_errors_the_step_naming_kubernetes(backend: Backend) {
    // The administrator's kubeconfig, pointed at a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (api_server, _) = control_plane::api_server();
    let kubeconfig = std::fs::read_to_string(control_plane::admin_kubeconfig()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let moved = dir.path().join("kubeconfig");
    std::fs::write(&moved, kubeconfig.replace(&api_server, &format!("https://127.0.0.1:{closed}"))).unwrap();
    let settings = KubernetesSettings { config_path: Some(moved), ..KubernetesSettings::default() };
    let credentials = Arc::new(Kubernetes::new(settings.check().unwrap(), None));
    let (server, token, _work) = server_with(backend, credentials, 2, std::time::Duration::from_millis(100)).await;
    server.set_and_unpause(&token, "away", &format!("jobs:\n{}", checking_job("j", &[("greeting", "x")]))).await;
    let (_, watched) = server.trigger_and_watch(&token, "away", "j").await;
    assert_eq!(watched.status(), "errored", "{}", watched.output());
    let output = watched.output();
    assert!(
        output.contains("((greeting))") && output.contains("kubernetes credential manager is unavailable"),
        "{output}"
    );
    server.stop().await;
}

on_both_backends!(an_unreachable_cluster_errors_the_step_naming_kubernetes);
