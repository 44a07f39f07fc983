//! A pod's life as the runtime follows it: phases, exit codes, logs,
//! Events, and exec with its streams apart.

use std::time::Duration;

use anyhow::{Context, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::Api;
use kube::api::{AttachParams, LogParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cluster::{Cluster, IMAGE};
use crate::support::{create_pod, exit_code, sleeping_pod, terminated, wait_for_events, wait_for_phase};

const WITHIN: Duration = Duration::from_secs(60);

pub async fn a_failing_pod_reports_its_exit_code_log_and_events(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-exit").await?;
    let spec = json!({
        "metadata": {"name": "exits-3"},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": IMAGE,
            "command": ["sh", "-c", "echo to stdout; echo to stderr >&2; exit 3"],
        }]},
    });
    let pods = create_pod(&cluster.client, &namespace, spec).await?;
    let pod = wait_for_phase(&pods, "exits-3", "Failed", WITHIN).await?;
    let ended = terminated(&pod).context("the container has no terminated state")?;
    ensure!(ended.exit_code == 3, "exit code {} instead of 3", ended.exit_code);
    ensure!(ended.reason.as_deref() == Some("Error"), "terminated reason {:?} instead of Error", ended.reason);

    let log = pods.logs("exits-3", &LogParams::default()).await?;
    ensure!(log.contains("to stdout\n") && log.contains("to stderr\n"), "log {log:?} lacks a stream");
    // From the scheduler, then from the node as a kubelet reports them.
    let reasons = ["Scheduled", "Pulling", "Pulled", "Created", "Started"];
    wait_for_events(&cluster.client, &namespace, "exits-3", &reasons, WITHIN).await?;
    Ok(())
}

pub async fn exec_keeps_stdin_stdout_and_stderr_apart(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-exec").await?;
    let pods = create_pod(&cluster.client, &namespace, sleeping_pod("sleeper", json!({}))).await?;
    wait_for_phase(&pods, "sleeper", "Running", WITHIN).await?;

    // `head -c` rather than `cat`: the process must not depend on stdin's end reaching it.
    let command = ["sh", "-c", "head -c 5; echo; echo oops >&2; exit 5"];
    let params = AttachParams::default().stdin(true).stdout(true).stderr(true);
    let mut process = pods.exec("sleeper", command, &params).await?;
    let mut stdin = process.stdin().context("no stdin")?;
    stdin.write_all(b"hello").await?;
    stdin.flush().await?;
    let (mut stdout, mut stderr) = (process.stdout().context("no stdout")?, process.stderr().context("no stderr")?);
    let status = process.take_status().context("no status")?;
    let (mut out, mut err) = (String::new(), String::new());
    tokio::time::timeout(WITHIN, async {
        tokio::try_join!(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err))
    })
    .await
    .context("the exec'd process did not end")??;
    let status = status.await.context("no exit status")?;
    drop(stdin);
    process.join().await?;

    ensure!(out == "hello\n", "stdout {out:?} instead of \"hello\\n\"");
    ensure!(err == "oops\n", "stderr {err:?} instead of \"oops\\n\"");
    let exit_code = exit_code(&status);
    ensure!(exit_code == Some(5), "exit code {exit_code:?} instead of 5");
    Ok(())
}

pub async fn init_containers_run_in_order_with_the_pods_volumes(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-init").await?;
    let create = PostParams::default();
    let config = json!({"metadata": {"name": "settings"}, "data": {"greeting": "from a config map"}});
    Api::<ConfigMap>::namespaced(cluster.client.clone(), &namespace)
        .create(&create, &serde_json::from_value(config)?)
        .await?;
    let secret = json!({"metadata": {"name": "credentials"}, "stringData": {"password": "from a secret"}});
    Api::<Secret>::namespaced(cluster.client.clone(), &namespace)
        .create(&create, &serde_json::from_value(secret)?)
        .await?;
    let shared = json!({"name": "shared", "mountPath": "/shared"});
    let spec = json!({
        "metadata": {"name": "staged"},
        "spec": {
            "restartPolicy": "Never",
            "initContainers": [
                {"name": "first", "image": IMAGE, "command": ["sh", "-c", "echo first > /shared/order"], "volumeMounts": [shared]},
                {"name": "second", "image": IMAGE, "command": ["sh", "-c", "echo second >> /shared/order"], "volumeMounts": [shared]},
            ],
            "containers": [{
                "name": "main", "image": IMAGE, "workingDir": "/shared",
                "command": ["sh", "-c", "cat order; cat /settings/greeting; echo; cat /credentials/password; echo; echo $FROM_CONFIG; pwd"],
                "env": [{"name": "FROM_CONFIG", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}}],
                "volumeMounts": [
                    shared,
                    {"name": "settings", "mountPath": "/settings"},
                    {"name": "credentials", "mountPath": "/credentials"},
                ],
            }],
            "volumes": [
                {"name": "shared", "emptyDir": {}},
                {"name": "settings", "configMap": {"name": "settings"}},
                {"name": "credentials", "secret": {"secretName": "credentials"}},
            ],
        },
    });
    let pods = create_pod(&cluster.client, &namespace, spec).await?;
    wait_for_phase(&pods, "staged", "Succeeded", WITHIN).await?;
    let log = pods.logs("staged", &LogParams { container: Some("main".into()), ..Default::default() }).await?;
    let expected = "first\nsecond\nfrom a config map\nfrom a secret\nfrom a config map\n/shared\n";
    ensure!(log == expected, "log {log:?} instead of {expected:?}");
    Ok(())
}

/// A `debian*` image runs in the Debian root filesystem debootstrap built,
/// not on the host: the host's own files are not there.
pub async fn an_image_with_a_root_filesystem_runs_inside_it(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-rootfs").await?;
    let host_only = crate::cluster::source_root();
    let script = format!(
        "grep VERSION_CODENAME /etc/os-release; test -e {} && echo host files visible; true",
        host_only.display()
    );
    let spec = json!({
        "metadata": {"name": "debian"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "debian:bookworm", "command": ["sh", "-c", script]}]},
    });
    let pods = create_pod(&cluster.client, &namespace, spec).await?;
    wait_for_phase(&pods, "debian", "Succeeded", WITHIN).await?;
    let log = pods.logs("debian", &LogParams::default()).await?;
    ensure!(log == "VERSION_CODENAME=bookworm\n", "log {log:?}");
    Ok(())
}

/// As on a kubelet, a process exec'd into a container goes when the stream
/// that started it drops: it never finishes behind the client's back.
pub async fn an_exec_whose_stream_drops_is_stopped(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = cluster.namespace("smoke-exec-drop").await?;
    let pods = create_pod(&cluster.client, &namespace, sleeping_pod("sleeper", json!({}))).await?;
    wait_for_phase(&pods, "sleeper", "Running", WITHIN).await?;

    let command = ["sh", "-c", "touch /tmp/started; echo started; sleep 3; touch /tmp/finished"];
    let params = AttachParams::default().stdin(false).stdout(true).stderr(false);
    let mut process = pods.exec("sleeper", command, &params).await?;
    let mut stdout = process.stdout().context("no stdout")?;
    let mut started = [0u8; 8];
    stdout.read_exact(&mut started).await?;
    drop(stdout);
    process.abort();
    // What is checked is that something does not happen: the time it would
    // have taken (3 s) has to pass, so this waits rather than polls.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;

    // Seen from the same container, or the second answer would prove nothing.
    let exit_code = exec_exit_code(&pods, "sleeper", ["test", "-e", "/tmp/started"]).await?;
    ensure!(exit_code == Some(0), "a second exec does not see the first one's files ({exit_code:?})");
    let exit_code = exec_exit_code(&pods, "sleeper", ["test", "-e", "/tmp/finished"]).await?;
    ensure!(exit_code == Some(1), "the dropped process finished anyway (test -e answered {exit_code:?})");
    Ok(())
}

/// The exit code of `command` run in pod `name` (0 when the status says Success).
async fn exec_exit_code(pods: &Api<Pod>, name: &str, command: [&str; 3]) -> anyhow::Result<Option<i32>> {
    let params = AttachParams::default().stdin(false).stdout(true).stderr(true);
    let mut process = pods.exec(name, command, &params).await?;
    let status = process.take_status().context("no status")?.await.context("no exit status")?;
    process.join().await?;
    Ok(exit_code(&status))
}
