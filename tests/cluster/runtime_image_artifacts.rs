//! A task whose image is an artifact of an earlier step (`image:`) on the
//! Kubernetes runtime: a step builds a small root filesystem (the host's
//! dash, cat and id with their libraries) with a `metadata.json` beside it,
//! as registry-image's `format: rootfs` lays one out, and the next step
//! runs inside it, with its environment, without changing the artifact.

use anyhow::{Context, ensure};
use atc::runtime::{Artifact, ImageSpec, OutputMount, Runtime, RuntimeError, StepOutcome};
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::runtime::support::{RecordingSink, import, read, run, tgz};
use crate::runtime::{shared, shell};

const BUILD_ROOTFS: &str = r#"set -e
r=img/rootfs
mkdir -p $r/bin $r/etc
for b in /bin/dash /bin/cat /usr/bin/id; do
  cp $b $r/bin/
  for l in $(ldd $b | grep -o '/[^ ]*'); do mkdir -p $r$(dirname $l); cp -L $l $r$l; done
done
mv $r/bin/dash $r/bin/sh
echo inside-the-image > $r/etc/marker
printf '{"env": ["FROM_IMAGE=yes", "WHO=image", "PATH=/bin"]}' > img/metadata.json
"#;

/// Runs `script` in `image`; its outcome and what it printed.
async fn run_in_artifact(
    runtime: &dyn Runtime,
    image: &Artifact,
    script: &str,
    user: Option<&str>,
) -> (Result<StepOutcome, RuntimeError>, std::sync::Arc<RecordingSink>) {
    let mut step = shell().step(script);
    step.image = Some(ImageSpec::Artifact(image.clone()));
    step.process.env = vec![("WHO".into(), "step".into())];
    step.process.user = user.map(str::to_string);
    step.outputs = vec![OutputMount { name: "out".into(), path: "out".into() }];
    let sink = RecordingSink::new();
    (run(runtime, step, sink.clone(), CancellationToken::new()).await, sink)
}

pub async fn a_task_runs_in_a_root_filesystem_an_earlier_step_made(cluster: &Cluster) -> anyhow::Result<()> {
    let runtime = &shared(cluster).await?.runtime;
    let mut build = shell().step(BUILD_ROOTFS);
    build.outputs = vec![OutputMount { name: "img".into(), path: "img".into() }];
    let sink = RecordingSink::new();
    let built = run(runtime, build, sink.clone(), CancellationToken::new()).await?;
    ensure!(built.exit_code == 0, "building the root filesystem: {}", sink.stderr());
    let image = built.outputs.get("img").context("no img output")?;

    let script = "cat /etc/marker; echo \"$FROM_IMAGE $WHO\"; [ -e /usr/bin/wget ] && echo host || echo no-host
                  echo changed > /etc/marker; echo from-the-image > out/file; id -u";
    let (outcome, sink) = run_in_artifact(runtime, image, script, None).await;
    let outcome = outcome?;
    ensure!(outcome.exit_code == 0, "exit {}: {}", outcome.exit_code, sink.stderr());
    ensure!(sink.stdout() == "inside-the-image\nyes step\nno-host\n0\n", "stdout {:?}", sink.stdout());
    let out = outcome.outputs.get("out").context("no out output")?;
    ensure!(read(runtime, out, "file").await == "from-the-image\n");
    ensure!(read(runtime, image, "rootfs/etc/marker").await == "inside-the-image\n", "the artifact changed");

    // A user the step names runs the process (chroot --userspec).
    let (outcome, sink) = run_in_artifact(runtime, image, "id -u", Some("1000")).await;
    ensure!(outcome?.exit_code == 0, "{}", sink.stderr());
    ensure!(sink.stdout() == "1000\n", "stdout {:?}", sink.stdout());

    // A program the image does not have is reported as such.
    let mut step = shell().step("unused");
    step.image = Some(ImageSpec::Artifact(image.clone()));
    step.process.path = "wget".into();
    let missing = run(runtime, step, RecordingSink::new(), CancellationToken::new()).await;
    ensure!(
        matches!(&missing, Err(RuntimeError::Setup(m)) if m.contains("cannot run wget: executable file not found")),
        "{missing:?}"
    );
    Ok(())
}

pub async fn an_artifact_without_a_root_filesystem_is_refused(cluster: &Cluster) -> anyhow::Result<()> {
    let runtime = &shared(cluster).await?.runtime;
    let not_an_image = import(runtime, tgz(&[("metadata.json", "{}", 0o644)])).await;
    let (outcome, _) = run_in_artifact(runtime, &not_an_image, "true", None).await;
    let Err(RuntimeError::Setup(message)) = &outcome else { anyhow::bail!("{outcome:?}") };
    ensure!(message.contains("has no rootfs/") && message.contains("format: rootfs"), "{message}");
    Ok(())
}
