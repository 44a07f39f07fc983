//! The test Kubernetes control plane (`scripts/k8s-up.sh`: kube-apiserver,
//! etcd, controller-manager, scheduler and the process-running node agent),
//! checked through `kube`, the client atc's Kubernetes runtime uses: what
//! that runtime and the Helm chart rely on must hold here as on a real
//! cluster. Then atc's Kubernetes runtime itself runs on it: the shared
//! runtime suite (`runtime`), faults and recovery (`runtime_faults`), its
//! spans (`runtime_spans`), task sidecars (`runtime_sidecars`), task
//! images from artifacts (`runtime_image_artifacts`), security contexts
//! (`runtime_security`), a build's own claim and node (`workspaces`), the collector (`reaper`) and `kill -9` of `atc
//! web` mid-build (`restart`). And the Helm chart, rendered, dry-run and
//! installed for real with atc running as a pod (`helm`).
//!
//! One cluster serves every check, so this target has its own harness: it
//! starts the cluster, runs the checks one after another (a filter argument
//! picks some, as with `cargo test`), stops the cluster and fails if any
//! check did. Needs root (the node agent's mount namespaces) and Go to build
//! the cluster the first time (`scripts/k8s-build.sh`, cached after).

mod atc_support;
mod cluster;
mod controllers;
mod faults;
mod helm;
mod pipelines;
mod pods;
mod rbac;
mod reaper;
mod restart;
mod runtime;
mod runtime_faults;
mod runtime_image_artifacts;
mod runtime_security;
mod runtime_sidecars;
mod runtime_spans;
mod storage;
mod support;
mod workspaces;

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Instant;

use cluster::Cluster;

type CheckFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;
pub type Check = for<'a> fn(&'a Cluster) -> CheckFuture<'a>;

macro_rules! checks {
    ($($module:ident :: $name:ident),* $(,)?) => {
        &[$((concat!(stringify!($module), "::", stringify!($name)), (|cluster| Box::pin($module::$name(cluster))) as Check)),*]
    };
}

/// In order: the node faults come last, as they take a node away for a while.
const CHECKS: &[(&str, Check)] = checks![
    pods::a_failing_pod_reports_its_exit_code_log_and_events,
    pods::exec_keeps_stdin_stdout_and_stderr_apart,
    pods::an_exec_whose_stream_drops_is_stopped,
    pods::init_containers_run_in_order_with_the_pods_volumes,
    pods::an_image_with_a_root_filesystem_runs_inside_it,
    storage::a_claim_is_bound_and_carries_files_from_one_pod_to_the_next,
    controllers::objects_owned_by_a_deleted_pod_are_collected,
    controllers::a_deployment_becomes_ready,
    controllers::an_unmatched_node_selector_leaves_a_pod_pending,
    rbac::a_token_whose_role_cannot_create_pods_is_refused,
    faults::an_image_that_cannot_be_pulled_backs_off,
    faults::an_oom_kill_ends_the_container_as_a_kubelet_reports_it,
    faults::an_evicted_pod_fails_as_evicted,
    faults::a_failing_exec_is_an_error,
    runtime_faults::an_image_that_cannot_be_pulled_errors_the_step,
    runtime_faults::an_oom_kill_errors_the_step_as_out_of_memory,
    runtime_faults::an_evicted_pod_errors_the_step_as_lost,
    runtime_faults::a_role_without_pods_exec_errors_the_step_at_once,
    runtime_faults::a_pod_no_node_takes_times_out,
    runtime_faults::a_lost_artifact_helper_pod_is_replaced,
    runtime_faults::a_step_outlives_the_runtime_that_started_it,
    runtime_faults::a_missing_named_claim_is_refused_at_start_up,
    runtime_faults::task_caches_can_have_a_claim_of_their_own,
    runtime_faults::a_step_whose_stdin_was_lost_with_atc_is_reported_lost,
    runtime_spans::a_step_pod_traces_where_its_time_went,
    runtime_spans::an_oom_kill_marks_the_pods_run_as_failed,
    runtime_spans::an_unpullable_image_marks_its_pull_as_failed,
    runtime_spans::an_eviction_ends_the_pod_span_as_lost,
    runtime_spans::an_unschedulable_pod_has_no_schedule_span,
    runtime_spans::an_unbound_claim_marks_its_bind_as_failed,
    runtime_sidecars::a_task_reaches_its_sidecar_on_localhost,
    runtime_sidecars::a_sidecar_whose_image_cannot_be_pulled_errors_the_step,
    pipelines::a_task_configs_sidecar_serves_the_task,
    runtime_image_artifacts::a_task_runs_in_a_root_filesystem_an_earlier_step_made,
    runtime_image_artifacts::an_artifact_without_a_root_filesystem_is_refused,
    runtime_security::a_task_as_a_non_root_uid_runs_restricted_as_that_uid,
    workspaces::the_steps_of_a_build_share_its_node_and_claim,
    restart::a_build_carries_on_after_atc_is_killed_mid_pod,
    reaper::the_collector_deletes_pods_of_ended_builds_only,
    helm::the_chart_renders_for_every_concern_and_the_api_server_accepts_it,
    helm::installed_it_runs_builds_as_pods_upgrades_and_uninstalls_cleanly,
    runtime_faults::a_step_whose_node_is_lost_errors_as_lost,
    faults::a_node_that_stops_reporting_becomes_not_ready,
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--list") {
        for (name, _) in CHECKS.iter().chain(runtime::CHECKS).chain(pipelines::CHECKS) {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    // Flags libtest would take (`--quiet`, `--nocapture`, ...) mean nothing here.
    let filter = args.iter().find(|arg| !arg.starts_with('-'));
    let selected: Vec<&(&str, Check)> = CHECKS
        .iter()
        .chain(runtime::CHECKS)
        .chain(pipelines::CHECKS)
        .filter(|(name, _)| filter.is_none_or(|filter| name.contains(filter.as_str())))
        .collect();
    if selected.is_empty() {
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(run(selected))
}

async fn run(selected: Vec<&(&str, Check)>) -> ExitCode {
    println!("\nrunning {} checks against the test Kubernetes control plane", selected.len());
    let cluster = match Cluster::start().await {
        Ok(cluster) => cluster,
        Err(err) => {
            eprintln!("cannot start the test cluster: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = Vec::new();
    for (name, check) in selected {
        let started = Instant::now();
        // A panicking check (an assert) fails alone.
        let result = {
            let cluster = &cluster;
            let outcome = std::panic::AssertUnwindSafe(check(cluster));
            futures_util::FutureExt::catch_unwind(outcome).await
        };
        let elapsed = started.elapsed().as_secs_f64();
        match result {
            Ok(Ok(())) => println!("check {name} ... ok ({elapsed:.1}s)"),
            Ok(Err(err)) => {
                println!("check {name} ... FAILED ({elapsed:.1}s): {err:#}");
                failed.push(*name);
            }
            Err(_) => {
                println!("check {name} ... FAILED ({elapsed:.1}s): panicked");
                failed.push(*name);
            }
        }
    }
    cluster.stop();
    if failed.is_empty() {
        println!("\ncluster checks: ok");
        ExitCode::SUCCESS
    } else {
        println!("\ncluster checks FAILED: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}
