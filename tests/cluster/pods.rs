//! A pod's life as the runtime follows it: phases, exit codes, logs,
//! Events, and exec with its streams apart.

use std::time::Duration;

use anyhow::{Context, ensure};
use kube::api::{AttachParams, LogParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cluster::{Cluster, IMAGE};
use crate::support::{create_pod, terminated, wait_for_events, wait_for_phase};

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
    let spec = json!({
        "metadata": {"name": "sleeper"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": IMAGE, "command": ["sleep", "300"]}]},
    });
    let pods = create_pod(&cluster.client, &namespace, spec).await?;
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
    let exit_code = status
        .details
        .and_then(|details| details.causes)
        .into_iter()
        .flatten()
        .find(|cause| cause.reason.as_deref() == Some("ExitCode"))
        .and_then(|cause| cause.message);
    ensure!(exit_code.as_deref() == Some("5"), "exit code {exit_code:?} instead of 5");
    Ok(())
}
