//! The shared runtime suite (`tests/runtime/suite.rs`, the same code the
//! local runtime passes) on the Kubernetes runtime, in a namespace of its
//! own. Steps run in `busybox`; the helper image is `atc.test/helper`, a
//! host image in which atc is where cargo built it.

use atc::runtime::ImageSpec;
use atc::runtime::k8s::{K8sRuntime, K8sRuntimeOptions};
use serde_json::json;
use tokio::sync::OnceCell;

use crate::cluster::Cluster;

#[allow(dead_code, reason = "shared with tests/runtime, whose local-runtime helpers are not used here")]
#[path = "../runtime/support.rs"]
pub mod support;

#[allow(unused_macros, reason = "runtime_suite! makes #[tokio::test]s; this target calls the cases itself")]
#[path = "../runtime/suite.rs"]
#[macro_use]
mod suite;

use support::Shell;

/// The runtime every case uses, and how it was made.
pub struct Shared {
    pub runtime: K8sRuntime,
    pub options: K8sRuntimeOptions,
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

/// One runtime for every case, made on first use.
pub async fn shared(cluster: &Cluster) -> anyhow::Result<&'static Shared> {
    SHARED
        .get_or_try_init(|| async {
            // Named for this run: a borrowed cluster (ATC_TEST_K8S_DIR) keeps earlier runs' caches.
            let namespace = cluster.namespace(&format!("runtime-suite-{}", std::process::id())).await?;
            let mut options = K8sRuntimeOptions::new(&namespace);
            options.helper_image = "atc.test/helper".into();
            options.helper_atc_path = env!("CARGO_BIN_EXE_atc").into();
            let runtime = K8sRuntime::new(cluster.client.clone(), options.clone()).await?;
            anyhow::Ok(Shared { runtime, options })
        })
        .await
}

fn shell() -> Shell {
    Shell { image: Some(image("busybox")) }
}

/// A task image from a registry-image `image_resource`.
pub fn image(repository: &str) -> ImageSpec {
    let source = json!({"repository": repository});
    ImageSpec::Resource { type_: "registry-image".into(), source, params: json!({}), version: None }
}

/// A check per suite case, and `CHECKS` naming them.
macro_rules! suite_checks {
    (; $($case:ident),* $(,)?) => {
        $(
            pub async fn $case(cluster: &Cluster) -> anyhow::Result<()> {
                let shared = shared(cluster).await?;
                suite::$case(&shared.runtime, &shell()).await;
                Ok(())
            }
        )*
        pub const CHECKS: &[(&str, crate::Check)] = &[
            $((concat!("runtime::", stringify!($case)), (|cluster| Box::pin($case(cluster))) as crate::Check)),*
        ];
    };
}

with_suite_cases!(suite_checks!());
