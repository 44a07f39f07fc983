//! The Helm chart (`helm/atc`) on the test control plane, as an operator
//! uses it: `helm lint` and `helm template` with the default values and a
//! values file per concern (`tests/helm/values-*.yaml`), every rendered
//! object accepted by the API server (a server-side dry run, with the
//! prometheus-operator CRDs installed for the ServiceMonitor and
//! PrometheusRule); then installed for real: atc's image runs the atc just
//! built (the node agent's image map), PostgreSQL is the tests' throwaway
//! cluster on the host, a build's steps run as pods in the steps'
//! namespace through the chart's ServiceAccount and Role, `helm upgrade`
//! changes the sampling rate, and `helm uninstall` leaves nothing of atc's.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use kube::Api;
use kube::api::ListParams;
use regex::Regex;
use serde_json::{Value, json};

use crate::atc_support::nodes::{Client, PASSWORD, printed_lines};
use crate::atc_support::{free_port, postgres};
use crate::cluster::{Cluster, atc_binary, source_root};
use crate::support::wait_for;

#[allow(dead_code, reason = "shared with tests/telemetry, which uses more of it")]
#[path = "../telemetry/otlp_receiver.rs"]
mod otlp_receiver;

/// The tools k8s-up.sh links into the cluster's directory, run with its
/// admin kubeconfig.
struct Tools {
    bin: PathBuf,
    kubeconfig: PathBuf,
}

impl Tools {
    fn new(cluster: &Cluster) -> Tools {
        let dir = cluster.kubeconfig.parent().expect("the kubeconfig is in the cluster's directory");
        Tools { bin: dir.join("bin"), kubeconfig: cluster.kubeconfig.clone() }
    }

    async fn helm(&self, args: &[&str]) -> anyhow::Result<String> {
        run(&self.bin.join("helm"), args, &self.kubeconfig).await
    }

    async fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        run(&self.bin.join("kubectl"), args, &self.kubeconfig).await
    }
}

/// Runs `program` to its end; its stdout, or an error with its stderr.
async fn run(program: &Path, args: &[&str], kubeconfig: &Path) -> anyhow::Result<String> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("cannot run {}", program.display()))?;
    if !output.status.success() {
        bail!(
            "{} {} failed ({}):\n{}{}",
            program.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

fn chart() -> String {
    source_root().join("helm/atc").display().to_string()
}

/// The objects of a rendering, hooks included.
fn objects(rendered: &str) -> anyhow::Result<Vec<Value>> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(rendered).context("the rendering is not YAML")?;
    Ok(documents.into_iter().filter(|doc| doc.is_object()).collect())
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

/// Installs the CRDs of the ServiceMonitor and PrometheusRule, from the
/// prometheus-operator module (scripts/k8s-build.sh crds).
async fn install_monitoring_crds(tools: &Tools) -> anyhow::Result<()> {
    let script = source_root().join("scripts/k8s-build.sh");
    let built = run(&script, &["crds"], &tools.kubeconfig).await?;
    let dir = built
        .lines()
        .find_map(|l| l.strip_prefix("MONITORING_CRDS="))
        .context("k8s-build.sh crds printed no MONITORING_CRDS")?;
    // Server-side: the CRDs are too big for kubectl's last-applied annotation.
    tools.kubectl(&["apply", "--server-side", "--force-conflicts", "-f", dir]).await?;
    tools
        .kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd/servicemonitors.monitoring.coreos.com",
            "crd/prometheusrules.monitoring.coreos.com",
            "--timeout=60s",
        ])
        .await?;
    Ok(())
}

pub async fn the_chart_renders_for_every_concern_and_the_api_server_accepts_it(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    let tools = Tools::new(cluster);
    install_monitoring_crds(&tools).await?;
    // The release's namespace, the steps' (values-kubernetes.yaml) and the
    // kubernetes credential manager's (values-creds-kubernetes.yaml).
    let namespace = cluster.namespace("helm-render").await?;
    for other in ["helm-steps", "concourse-main", "concourse-ops", "concourse-shared"] {
        cluster.namespace(other).await?;
    }
    let chart = chart();
    let mut values_files: Vec<PathBuf> = std::fs::read_dir(source_root().join("tests/helm"))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    values_files.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("values-")));
    values_files.sort();
    ensure!(values_files.len() >= 10, "a values file per concern in tests/helm: {values_files:?}");
    let scratch = tempfile::tempdir()?;
    let mut renderings = Vec::new();
    for values in std::iter::once(None).chain(values_files.iter().map(Some)) {
        let mut args = vec!["--namespace", &namespace];
        let file;
        if let Some(values) = values {
            file = values.display().to_string();
            args.extend(["--values", &file]);
        }
        let label = values.map_or("default values".to_string(), |v| v.display().to_string());
        tools.helm(&[&["lint", &chart][..], &args].concat()).await.with_context(|| format!("helm lint, {label}"))?;
        let rendered = tools
            .helm(&[&["template", "r", &chart][..], &args].concat())
            .await
            .with_context(|| format!("helm template, {label}"))?;
        let path = scratch.path().join(format!("rendered-{}.yaml", renderings.len()));
        std::fs::write(&path, &rendered)?;
        tools
            // Every object names its namespace (the Roles go to others).
            .kubectl(&["apply", "--dry-run=server", "-f", &path.display().to_string()])
            .await
            .with_context(|| format!("the API server refused the rendering of {label}"))?;
        renderings.push((label, objects(&rendered)?));
    }

    // The runtime's Role is exactly the one the README documents.
    let documented: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(source_root().join("deploy/kubernetes-role.yaml"))?)?;
    let default = &renderings[0].1;
    let role = find(default, "Role", "r-atc-runtime").context("no Role r-atc-runtime")?;
    ensure!(
        role["rules"] == documented["rules"],
        "the chart's Role {} is not deploy/kubernetes-role.yaml's {}",
        role["rules"],
        documented["rules"]
    );
    ensure!(
        role["metadata"]["namespace"] == namespace.as_str(),
        "the Role goes to the steps' namespace: {}",
        role["metadata"]
    );
    let rendering_of = |file: &str| {
        renderings.iter().find(|(label, _)| label.ends_with(file)).map(|(_, objects)| objects.as_slice()).unwrap_or(&[])
    };
    let steps_role = find(rendering_of("values-kubernetes.yaml"), "Role", "r-atc-runtime")
        .context("values-kubernetes.yaml renders the runtime's Role")?;
    ensure!(steps_role["metadata"]["namespace"] == "helm-steps", "{}", steps_role["metadata"]);
    let get_secrets = json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]);
    let mut creds_namespaces: Vec<&str> = rendering_of("values-creds-kubernetes.yaml")
        .iter()
        .filter(|o| o["kind"] == "Role" && o["metadata"]["name"] == "r-atc-creds" && o["rules"] == get_secrets)
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .collect();
    creds_namespaces.sort();
    ensure!(
        creds_namespaces == ["concourse-main", "concourse-ops", "concourse-shared"],
        "get on secrets in each team's namespace: {creds_namespaces:?}"
    );

    // The alerts are valid Prometheus rules, and they and the dashboard
    // use series atc has.
    let observability = rendering_of("values-observability.yaml");
    let rule = find(observability, "PrometheusRule", "r-atc").context("no PrometheusRule")?;
    let rules_file = scratch.path().join("rules.yaml");
    std::fs::write(&rules_file, serde_json::to_string(&rule["spec"])?)?;
    run(Path::new("promtool"), &["check", "rules", &rules_file.display().to_string()], &tools.kubeconfig).await?;
    let dashboard = find(observability, "ConfigMap", "r-atc-dashboard").context("no dashboard ConfigMap")?;
    let dashboard: Value = serde_json::from_str(dashboard["data"]["atc.json"].as_str().unwrap_or_default())?;
    let exemplars = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten());
    ensure!(exemplars.filter(|t| t["exemplar"] == true).count() >= 4, "the dashboard shows exemplars");
    let series = std::fs::read_to_string(source_root().join("src/metric/series.rs"))?;
    let used = Regex::new(r"concourse_[a-z0-9_]+")?;
    let text = format!("{} {}", rule["spec"], dashboard);
    for name in used.find_iter(&text).map(|m| m.as_str()) {
        let registered =
            ["_bucket", "_count", "_sum", "_total"].iter().fold(name, |n, suffix| n.strip_suffix(suffix).unwrap_or(n));
        ensure!(
            series.contains(&format!("\"{registered}\"")),
            "{name} is no series atc registers (src/metric/series.rs)"
        );
    }

    // Wrong values are refused at install time, naming them (by the schema,
    // or by the chart's own checks).
    for (set, expected) in [
        ("web.port=eighty", "at '/web/port'"),
        ("tracing.sampling.strategy=sometimes", "at '/tracing/sampling/strategy'"),
        (
            "creds.vault.enabled=true,creds.ssm.enabled=true",
            "more than one credential manager is enabled (vault and ssm)",
        ),
        ("encryption.key=short", "must be 16 or 32 bytes"),
    ] {
        let refused = tools.helm(&["template", "r", &chart, "--set", set]).await;
        let message = format!("{:#}", refused.err().with_context(|| format!("--set {set} was accepted"))?);
        ensure!(message.contains(expected), "--set {set}: the error does not name {expected}: {message}");
    }
    Ok(())
}

/// A pipeline whose task prints its TRACEPARENT (the build's trace and
/// whether it is sampled), then sleeps `sleep` seconds.
fn pipeline(sleep: u32) -> String {
    format!(
        "jobs:\n- name: job\n  plan:\n  - task: print\n    config:\n      platform: linux\n      image_resource: {{type: registry-image, source: {{repository: busybox}}}}\n      run: {{path: sh, args: [-c, 'echo \"traceparent=$TRACEPARENT\"; sleep {sleep}']}}\n"
    )
}

/// The sampled flag of the traceparent a build printed.
async fn build_traceparent(client: &Client, build: i64) -> anyhow::Result<(String, bool)> {
    let lines = printed_lines(&client.events(build).await.unwrap_or_default());
    let pattern = Regex::new(r"traceparent=00-([0-9a-f]{32})-[0-9a-f]{16}-0([01])")?;
    let found =
        lines.iter().find_map(|line| pattern.captures(line)).with_context(|| format!("no traceparent in {lines:?}"))?;
    Ok((found[1].to_string(), &found[2] == "1"))
}

pub async fn installed_it_runs_builds_as_pods_upgrades_and_uninstalls_cleanly(cluster: &Cluster) -> anyhow::Result<()> {
    let tools = Tools::new(cluster);
    let namespace = cluster.namespace("helm-atc").await?;
    let steps = cluster.namespace("helm-build-steps").await?;
    let pg = postgres::fresh_database().await;
    let receiver = otlp_receiver::OtlpReceiver::start().await;
    let (port, metrics_port) = (free_port(), free_port());
    // The node agent's pods share the host's network: atc listens on free
    // ports of 127.0.0.1, and a rolling update would have two atc pods
    // on one port, so the old one goes first.
    let values = json!({
        "image": {"repository": "atc.test/atc", "tag": "test"},
        "updateStrategy": {"type": "Recreate"},
        "web": {"port": port, "bindIp": "127.0.0.1"},
        "metrics": {"prometheus": {"port": metrics_port, "bindIp": "127.0.0.1"}},
        "postgres": {"host": pg.host, "port": pg.port, "database": pg.database, "user": pg.user, "password": "through-the-secret"},
        "auth": {"localUsers": [{"username": "admin", "password": PASSWORD}], "mainTeamLocalUsers": ["admin"]},
        "encryption": {"key": "0123456789abcdef0123456789abcdef"},
        // The helper image is atc's own; on this node it is the host, so atc is where cargo built it.
        "kubernetes": {"namespace": steps, "helperAtcPath": atc_binary(), "podStartupTimeout": "2m"},
        "tracing": {
            "otlp": {"address": format!("http://{}", receiver.grpc_addr), "protocol": "grpc"},
            "sampling": {"strategy": "probability", "rate": 1},
        },
        "cleanup": {"timeout": "2m", "stepGracePeriodSeconds": 1},
    });
    let scratch = tempfile::tempdir()?;
    let values_file = scratch.path().join("values.json");
    std::fs::write(&values_file, values.to_string())?;
    let values_file = values_file.display().to_string();
    let chart = chart();
    let release = ["--namespace", namespace.as_str(), "--values", values_file.as_str(), "--wait", "--timeout", "3m"];
    let outcome = async {
        let notes = tools.helm(&[&["install", "atc", &chart][..], &release].concat()).await?;
        ensure!(notes.contains("First login") && notes.contains("as admin"), "NOTES.txt: {notes}");
        check_installed(cluster, &tools, &namespace, &steps, port, &receiver).await?;
        tools
            .helm(&[&["upgrade", "atc", &chart][..], &release, &["--set", "tracing.sampling.rate=0"]].concat())
            .await?;
        check_upgraded(cluster, &namespace, port).await?;
        check_uninstall(cluster, &tools, &namespace, &steps, port).await
    }
    .await;
    if let Err(err) = outcome {
        let logs = tools.kubectl(&["logs", "--namespace", &namespace, "deployment/atc", "--tail=40"]).await;
        let events = tools.kubectl(&["get", "events", "--namespace", &namespace]).await;
        let _ = tools.helm(&["uninstall", "atc", "--namespace", &namespace, "--timeout", "2m"]).await;
        return Err(err.context(format!("atc's log: {logs:?}\nevents: {events:?}")));
    }
    Ok(())
}

/// The web pod in-cluster, under the chart's ServiceAccount: it serves,
/// logs in, and runs a build whose step is a pod in the steps' namespace.
async fn check_installed(
    cluster: &Cluster,
    tools: &Tools,
    namespace: &str,
    steps: &str,
    port: u16,
    receiver: &otlp_receiver::OtlpReceiver,
) -> anyhow::Result<()> {
    let deployment = Api::<Deployment>::namespaced(cluster.client.clone(), namespace).get("atc").await?;
    let ready = deployment.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
    ensure!(ready == 1, "helm --wait returned with {ready} ready replicas");
    let pod = web_pods(cluster, namespace).await?.into_iter().next().context("no atc pod")?;
    let spec = pod.spec.as_ref().context("pod spec")?;
    ensure!(spec.service_account_name.as_deref() == Some("atc"), "the pod runs as {:?}", spec.service_account_name);
    let args = spec.containers[0].args.clone().unwrap_or_default();
    ensure!(
        !args.iter().any(|a| a.contains("kubeconfig")),
        "no kubeconfig: atc reaches the cluster in-cluster: {args:?}"
    );
    let url = format!("http://127.0.0.1:{port}");
    let health: Value = reqwest::get(format!("{url}/api/v1/health")).await?.json().await?;
    ensure!(health["status"] == "ok", "health {health}");

    let client = Client::login(&url).await;
    client.set_pipeline(&pipeline(0)).await;
    let build = client.trigger().await;
    let status = client.wait_for_end(build, Duration::from_secs(120)).await;
    ensure!(
        status == "succeeded",
        "the build {status}: {:?}",
        printed_lines(&client.events(build).await.unwrap_or_default())
    );
    let (trace_id, sampled) = build_traceparent(&client, build).await?;
    ensure!(sampled, "sampling rate 1: the build's trace is sampled");
    receiver.wait_for_span(Duration::from_secs(30), |s| s.trace_id == trace_id && s.name == "build p/job").await;
    // The step ran as a pod there: the artifact helper pod atc made with its own
    // account is there too, and the service account has no rights but the chart's Role.
    let helper = Api::<Pod>::namespaced(cluster.client.clone(), steps).get_opt("atc-artifact-helper").await?;
    ensure!(helper.is_some(), "atc made its artifact helper pod in {steps}");
    let can_elsewhere = tools
        .kubectl(&[
            "auth",
            "can-i",
            "create",
            "pods",
            "--namespace",
            "default",
            "--as",
            &format!("system:serviceaccount:{namespace}:atc"),
        ])
        .await;
    ensure!(can_elsewhere.is_err(), "atc's account may create pods outside the steps' namespace: {can_elsewhere:?}");
    tools
        .kubectl(&[
            "auth",
            "can-i",
            "create",
            "pods/exec",
            "--namespace",
            steps,
            "--as",
            &format!("system:serviceaccount:{namespace}:atc"),
        ])
        .await
        .context("the chart's Role lets atc exec into step pods")?;
    Ok(())
}

async fn web_pods(cluster: &Cluster, namespace: &str) -> anyhow::Result<Vec<Pod>> {
    let selector = "app.kubernetes.io/instance=atc,app.kubernetes.io/component=web";
    Ok(Api::<Pod>::namespaced(cluster.client.clone(), namespace)
        .list(&ListParams::default().labels(selector))
        .await?
        .items)
}

/// After `helm upgrade --set tracing.sampling.rate=0` the new pod has the
/// flag, and a new build's trace is not sampled.
async fn check_upgraded(cluster: &Cluster, namespace: &str, port: u16) -> anyhow::Result<()> {
    let pods = web_pods(cluster, namespace).await?;
    let args: Vec<Vec<String>> =
        pods.iter().map(|p| p.spec.as_ref().and_then(|s| s.containers[0].args.clone()).unwrap_or_default()).collect();
    ensure!(
        !args.is_empty() && args.iter().all(|a| a.iter().any(|f| f == "--tracing-sampling-rate=0")),
        "the upgraded pods' args: {args:?}"
    );
    let client = Client::login(&format!("http://127.0.0.1:{port}")).await;
    let build = client.trigger().await;
    let status = client.wait_for_end(build, Duration::from_secs(120)).await;
    ensure!(status == "succeeded", "the build after the upgrade {status}");
    let (_, sampled) = build_traceparent(&client, build).await?;
    ensure!(!sampled, "sampling rate 0 after the upgrade: the build's trace is not sampled");
    Ok(())
}

/// `helm uninstall` during a build: the pre-delete Job stops atc and deletes
/// what it made, so no pod, claim or Secret of atc's stays.
async fn check_uninstall(
    cluster: &Cluster,
    tools: &Tools,
    namespace: &str,
    steps: &str,
    port: u16,
) -> anyhow::Result<()> {
    let client = Client::login(&format!("http://127.0.0.1:{port}")).await;
    client.set_pipeline(&pipeline(300)).await;
    let build = client.trigger().await;
    client.wait_for_line(build, "traceparent=").await;
    let step_pods = Api::<Pod>::namespaced(cluster.client.clone(), steps)
        .list(&ListParams::default().labels(&format!("concourse.ci/build-id={build}")))
        .await?;
    ensure!(!step_pods.items.is_empty(), "the running build has a step pod in {steps}");
    let claims =
        Api::<PersistentVolumeClaim>::namespaced(cluster.client.clone(), steps).list(&ListParams::default()).await?;
    ensure!(!claims.items.is_empty(), "atc made its artifact claim in {steps}");

    tools.helm(&["uninstall", "atc", "--namespace", namespace, "--wait", "--timeout", "3m"]).await?;
    wait_for("nothing of atc's left", Duration::from_secs(60), || async {
        let mut left = Vec::new();
        for ns in [namespace, steps] {
            let pods = Api::<Pod>::namespaced(cluster.client.clone(), ns).list(&ListParams::default()).await?;
            left.extend(pods.items.into_iter().map(|p| format!("pod {ns}/{}", p.metadata.name.unwrap_or_default())));
            let claims = Api::<PersistentVolumeClaim>::namespaced(cluster.client.clone(), ns)
                .list(&ListParams::default())
                .await?;
            left.extend(
                claims.items.into_iter().map(|c| format!("claim {ns}/{}", c.metadata.name.unwrap_or_default())),
            );
            let secrets = Api::<Secret>::namespaced(cluster.client.clone(), ns).list(&ListParams::default()).await?;
            left.extend(
                secrets.items.into_iter().map(|s| format!("secret {ns}/{}", s.metadata.name.unwrap_or_default())),
            );
        }
        Ok(if left.is_empty() { ControlFlow::Break(()) } else { ControlFlow::Continue(left.join(", ")) })
    })
    .await
}
