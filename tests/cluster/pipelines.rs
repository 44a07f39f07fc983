//! The testflight scenarios (`tests/api/testflight.rs` and two of
//! `tests/api/pipelines_run.rs`, the same code the local runtime passes) on
//! the Kubernetes runtime: a server on SQLite
//! whose steps run as pods, each scenario in a namespace of its own (build
//! ids, and so step handles, start again with each server's database), and
//! that namespace deleted afterwards.
//!
//! Every scenario runs but two: `puts_get_the_inputs_they_name_or_detect`,
//! whose resource type comes from the local runtime's
//! `--resource-types-dir`, and `timeouts_fail_the_step_and_run_failure_hooks`,
//! whose tasks take their image from the mock's `mirror_self` artifact
//! (`image:`): that image holds only the mock's resource scripts, no
//! `/bin/sh` or `echo`, and the Kubernetes runtime runs a task inside its
//! image artifact's root filesystem (`runtime_image_artifacts` shows it
//! with a real one). One scenario is the Kubernetes runtime's own: a task
//! config's `sidecars:`, which the local runtime refuses.

use std::future::Future;
use std::sync::Arc;

use atc::runtime::k8s::K8sRuntime;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::DeleteParams;

use crate::cluster::Cluster;

// The whole test harness (it allows its own dead code), of which the scenarios use the server and its client.
#[path = "../support/mod.rs"]
pub mod support;

#[allow(dead_code, reason = "its #[tokio::test]s exist only under libtest; this target calls the scenarios itself")]
#[path = "../api/testflight.rs"]
mod testflight;

#[allow(dead_code, reason = "as testflight; its first scenario counts the local runtime's artifacts")]
#[path = "../api/pipelines_run.rs"]
mod pipelines_run;

use support::{Backend, On};

/// Runs `scenario` against a server whose runtime is a new
/// [`K8sRuntime`] in namespace `testflight-NAME-PID`, then deletes it.
async fn on_kubernetes<F, Fut>(cluster: &Cluster, name: &str, scenario: F) -> anyhow::Result<()>
where
    F: FnOnce(On) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut options = crate::runtime::shared(cluster).await?.options.clone();
    options.helper_atc_path = crate::cluster::atc_binary().to_string_lossy().into_owned();
    // Pod and namespace names are DNS labels: at most 63 characters.
    let short: String = name.split('_').map(|word| &word[..word.len().min(3)]).collect::<Vec<_>>().join("-");
    options.namespace = cluster.namespace(&format!("tf-{short}-{}", std::process::id())).await?;
    let runtime = K8sRuntime::new(cluster.client.clone(), options.clone()).await?;
    scenario(On { backend: Backend::Sqlite, runtime: Some(Arc::new(runtime)) }).await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    namespaces.delete(&options.namespace, &DeleteParams::default()).await?;
    Ok(())
}

/// A check per scenario, and `CHECKS` naming them.
macro_rules! scenario_checks {
    ($($module:ident :: $scenario:ident),* $(,)?) => {
        $(
            pub async fn $scenario(cluster: &Cluster) -> anyhow::Result<()> {
                on_kubernetes(cluster, stringify!($scenario), $module::$scenario).await
            }
        )*
        pub const CHECKS: &[(&str, crate::Check)] = &[
            $((concat!(stringify!($module), "::", stringify!($scenario)), (|cluster| Box::pin($scenario(cluster))) as crate::Check)),*
        ];
    };
}

scenario_checks!(
    testflight::hooks_run_under_the_right_conditions,
    testflight::try_do_fail_and_in_parallel,
    testflight::retry_attempts_until_the_step_succeeds,
    testflight::across_runs_every_combination_and_puts_each_value,
    testflight::load_var_and_task_inputs_outputs_and_mappings,
    testflight::task_caches_keep_only_cached_paths_between_builds,
    testflight::latest_every_and_pinned_versions,
    testflight::a_pinned_resource_checks_and_runs_with_its_pin,
    testflight::serial_groups_wait_for_inputs_without_blocking_others,
    testflight::set_pipeline_step_sets_other_pipelines_and_itself,
    testflight::a_non_main_team_cannot_set_another_teams_pipeline,
    testflight::renames_keep_history,
    testflight::reruns_are_named_after_the_build_they_repeat,
    testflight::in_parallel_and_across_honour_limits_and_fail_fast,
    pipelines_run::a_webhook_with_the_right_token_checks_the_resource,
    pipelines_run::task_files_come_from_artifacts,
);

/// A task config's `sidecars:` through the whole server: set in a
/// pipeline, run by the engine, served to the task on localhost.
pub async fn a_task_configs_sidecar_serves_the_task(cluster: &Cluster) -> anyhow::Result<()> {
    let port = crate::runtime_sidecars::free_port()?;
    let pipeline = format!(
        r#"
jobs:
- name: with-sidecar
  plan:
  - task: fetch
    config:
      platform: linux
      sidecars:
      - name: web
        image: busybox
        command: [python3, -m, http.server, "{port}", --bind, 127.0.0.1]
        workingDir: /tmp/build/step
        ports: [{{containerPort: {port}, name: http}}]
      run:
        path: sh
        args:
        - -c
        - |
          echo served-by-the-sidecar > note
          i=0
          until wget -qO- http://127.0.0.1:{port}/note; do i=$((i + 1)); [ $i -ge 200 ] && exit 7; sleep 0.1; done
"#
    );
    on_kubernetes(cluster, "sidecar_pipeline", |on| async move {
        let server = support::TestServer::start(on).await;
        let token = server.admin_token().await;
        server.set_and_unpause(&token, "sidecar", &pipeline).await;
        let (_, build) = server.trigger_and_watch(&token, "sidecar", "with-sidecar").await;
        assert_eq!(build.status(), "succeeded", "{}", build.output());
        assert!(build.log().contains("served-by-the-sidecar"), "{}", build.log());
        server.stop().await;
    })
    .await
}
