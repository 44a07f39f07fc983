//! The cluster the checks run on: started by `scripts/k8s-up.sh` into a
//! directory of its own, stopped (and that directory removed) by
//! `scripts/k8s-down.sh`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// The nodes of `tests/k8s/node/nodes.yaml`: the second is tainted.
pub const NODE_A: &str = "atc-node-a";
pub const NODE_B: &str = "atc-node-b";
/// An image the node agent runs on the host (behind an overlay).
pub const IMAGE: &str = "busybox";

pub struct Cluster {
    dir: PathBuf,
    /// Started by someone else (`ATC_TEST_K8S_DIR`): left running.
    borrowed: bool,
    /// The administrator's kubeconfig, for processes the checks start.
    pub kubeconfig: PathBuf,
    pub config: Config,
    pub client: Client,
}

impl Cluster {
    /// Starts a cluster and connects to it as its administrator; with
    /// `ATC_TEST_K8S_DIR`, connects to the one `scripts/k8s-up.sh DIR`
    /// started there instead (quicker while working on a check that makes
    /// namespaces of its own), and leaves it running.
    pub async fn start() -> anyhow::Result<Cluster> {
        if let Some(dir) = std::env::var_os("ATC_TEST_K8S_DIR") {
            let dir = PathBuf::from(dir);
            let kubeconfig = dir.join("admin.kubeconfig");
            let (config, client) = connect(&kubeconfig).await?;
            return Ok(Cluster { dir, borrowed: true, kubeconfig, config, client });
        }
        let script = source_root().join("scripts/k8s-up.sh");
        let dir = tempfile::Builder::new().prefix("atc-cluster.").tempdir()?.keep();
        // Progress and errors go to stderr, straight through; the kubeconfig's path is the last line of stdout.
        let output = Command::new(&script)
            .arg(&dir)
            // Pods of image atc.test/atc:TAG (the Helm chart's checks) run this atc.
            .env("ATC_K8S_ATC_BINARY", atc_binary())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run {}", script.display()))?;
        if !output.status.success() {
            stop(&dir);
            bail!("{} failed ({}); its errors are above", script.display(), output.status);
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let kubeconfig = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
        match connect(&kubeconfig).await {
            Ok((config, client)) => Ok(Cluster { dir, borrowed: false, kubeconfig, config, client }),
            Err(err) => {
                stop(&dir);
                Err(err.context(format!("cannot connect with {}", kubeconfig.display())))
            }
        }
    }

    /// A new namespace for one check, so checks never see each other's objects.
    pub async fn namespace(&self, name: &str) -> anyhow::Result<String> {
        let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        Api::<Namespace>::all(self.client.clone()).create(&PostParams::default(), &namespace).await?;
        Ok(name.to_string())
    }

    pub fn stop(self) {
        if !self.borrowed {
            stop(&self.dir);
        }
    }

    /// Runs `work` (a bench's) on a started cluster, and stops the cluster
    /// afterwards even when `work` panics (the panic then goes on).
    #[allow(dead_code, reason = "the benches' entry; the checks' harness catches each check's panic itself")]
    pub async fn run<T>(work: impl AsyncFnOnce(&Cluster) -> T) -> T {
        let cluster = Cluster::start().await.expect("the test cluster starts");
        let outcome = std::panic::AssertUnwindSafe(work(&cluster));
        let result = futures_util::FutureExt::catch_unwind(outcome).await;
        cluster.stop();
        result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

async fn connect(kubeconfig: &Path) -> anyhow::Result<(Config, Client)> {
    let kubeconfig = Kubeconfig::read_from(kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = Client::try_from(config.clone())?;
    Ok((config, client))
}

/// Stops what k8s-up.sh started in `dir` and removes it; a directory it
/// never got to use is only removed if empty.
fn stop(dir: &Path) {
    let script = source_root().join("scripts/k8s-down.sh");
    match Command::new(&script).arg(dir).stdin(Stdio::null()).status() {
        Ok(status) if status.success() => {}
        other => eprintln!("{} {} did not stop the cluster cleanly: {other:?}", script.display(), dir.display()),
    }
    let _ = std::fs::remove_dir(dir);
}

/// The checkout under test, read when the checks run (as in
/// `tests/support`): the build cache is shared between clones, so a path
/// baked in at compile time can name a clone that is gone.
pub fn source_root() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run under cargo, which sets CARGO_MANIFEST_DIR"))
}

/// atc as cargo built it beside the running test or bench
/// (`target/PROFILE/atc`, as cargo builds the binaries for both), found
/// when it runs rather than baked in (`env!("CARGO_BIN_EXE_atc")`), for the
/// same reason as [`source_root`]. The test helper image is the host, so
/// pods run it from there.
pub fn atc_binary() -> PathBuf {
    let current = std::env::current_exe().expect("the running executable's path");
    let profile_dir = current.parent().and_then(Path::parent).expect("run from target/PROFILE/deps");
    let atc = profile_dir.join("atc");
    assert!(atc.is_file(), "no atc at {} (cargo builds it for tests and benches)", atc.display());
    atc
}
