//! Task sidecars on the Kubernetes runtime: containers of the step's pod
//! that share its network (the node agent runs every pod on the host's
//! network, so each check picks a free port) and its working root, each
//! traced as `k8s.sidecar.start`; a sidecar whose image cannot be pulled
//! errors the step naming it.

use anyhow::{Context, ensure};
use atc::runtime::{RuntimeError, Sidecar, SidecarPort, TraceContext};
use opentelemetry::trace::TraceId;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::runtime::support::{RecordingSink, run};
use crate::runtime::{shared, shell};
use crate::runtime_spans::{ended_in, named};

/// A port nothing on this host listens on now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub async fn a_task_reaches_its_sidecar_on_localhost(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let port = free_port()?;
    // The task writes a file in its root; the sidecar serves that root.
    let script = format!(
        "echo written-by-the-task > note
         i=0
         until wget -qO- http://127.0.0.1:{port}/note; do
           i=$((i + 1)); [ $i -ge 200 ] && exit 7; sleep 0.1
         done"
    );
    let mut step = shell().step(&script);
    step.sidecars = vec![Sidecar {
        name: "files".into(),
        image: "busybox".into(),
        command: vec!["python3".into(), "-m".into(), "http.server".into()],
        args: vec![port.to_string(), "--bind".into(), "127.0.0.1".into()],
        ports: vec![SidecarPort { port, name: Some("http".into()), protocol: "TCP".into() }],
        working_dir: "/tmp/build/step".into(),
        ..Default::default()
    }];
    ended_in(TraceId::INVALID);
    let trace: [u8; 16] = rand::random();
    let trace_hex: String = trace.iter().map(|b| format!("{b:02x}")).collect();
    step.trace = Some(TraceContext { traceparent: format!("00-{trace_hex}-00f067aa0ba902b7-01"), tracestate: None });
    let sink = RecordingSink::new();
    let outcome = run(&shared.runtime, step, sink.clone(), CancellationToken::new()).await?;
    ensure!(outcome.exit_code == 0, "exit {}; stderr {}", outcome.exit_code, sink.stderr());
    ensure!(sink.stdout() == "written-by-the-task\n", "stdout {:?}", sink.stdout());

    let spans = ended_in(TraceId::from_bytes(trace));
    let pod = spans.iter().find(|span| span.name.starts_with("k8s.pod test-")).context("no k8s.pod span")?;
    let sidecar = named(&spans, "k8s.sidecar.start files")?;
    ensure!(sidecar.parent_span_id == pod.span_context.span_id(), "k8s.sidecar.start is not under k8s.pod");
    ensure!(sidecar.end_time >= sidecar.start_time);
    let init = named(&spans, "k8s.init_container fetch-inputs")?;
    ensure!(sidecar.start_time >= init.end_time, "the sidecar started before the inputs were staged");
    let container = sidecar.attributes.iter().find(|a| a.key.as_str() == "k8s.container.name");
    ensure!(container.is_some_and(|a| a.value.as_str() == "files"), "{:?}", sidecar.attributes);
    Ok(())
}

pub async fn a_sidecar_whose_image_cannot_be_pulled_errors_the_step(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let mut step = shell().step("echo never");
    step.sidecars = vec![Sidecar {
        name: "broken".into(),
        image: "atc.test/broken-pull".into(),
        command: vec!["sleep".into(), "30".into()],
        ..Default::default()
    }];
    let sink = RecordingSink::new();
    let result = run(&shared.runtime, step, sink.clone(), CancellationToken::new()).await;
    let Err(err @ RuntimeError::ImageUnavailable { .. }) = &result else { anyhow::bail!("{result:?}") };
    let message = err.to_string();
    ensure!(message.contains("atc.test/broken-pull (sidecar broken)") && message.contains("ErrImagePull"), "{message}");
    ensure!(sink.stdout().is_empty(), "the task ran: {:?}", sink.stdout());
    Ok(())
}
