//! The collector on the Kubernetes runtime: the pod of a build that ended
//! (atc died between recording the end and stopping the step) is deleted,
//! and so are the build's own claim and the pod holding it; the pods and
//! claim of a running build stay; on SQLite and PostgreSQL.

use std::sync::Arc;

use anyhow::ensure;
use atc::component::Component;
use atc::db::{BuildStatus, Db, NewBuild, TeamAuth};
use atc::gc::{ARTIFACT_TTL, Collector};
use atc::runtime::k8s::K8sRuntime;
use atc::runtime::{Runtime, StepHandle};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;

use crate::atc_support::postgres::fresh_database;
use crate::cluster::Cluster;
use crate::runtime::support::{Shell, observer};
use crate::runtime::{image, shared};

pub async fn the_collector_deletes_pods_of_ended_builds_only(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = shared(cluster).await?;
    let dir = tempfile::tempdir()?;
    let databases =
        [Db::open_sqlite(&dir.path().join("atc.db")).await?, Db::connect_postgres(&fresh_database().await).await?];
    for db in databases {
        db.migrate().await?;
        let (team, _) = db.save_team("main", &TeamAuth::new()).await?;
        let build = |name: &str| NewBuild { team_id: team.id, name: name.into(), ..Default::default() };
        let ended = db.create_build(&build("1")).await?;
        let running = db.create_build(&build("2")).await?;
        let runtime = Arc::new(K8sRuntime::new(shared.client.clone(), shared.options.clone()).await?);
        let step_of = |build_id: i64| {
            let mut step = Shell { image: Some(image("busybox")) }.step("sleep 60");
            step.metadata.build_id = Some(build_id);
            step
        };
        let left = runtime.start(step_of(ended), observer()).await?;
        let kept = runtime.start(step_of(running), observer()).await?;
        ensure!(db.end_unstarted_build(ended, BuildStatus::Succeeded, &[]).await?);

        let collector = Collector::new(db.clone(), runtime.clone(), ARTIFACT_TTL);
        collector.tick().await?;
        let listed: Vec<StepHandle> = runtime.list().await?.into_iter().map(|step| step.handle).collect();
        ensure!(!listed.contains(&left), "the ended build's pod {left} is still there: {listed:?}");
        ensure!(listed.contains(&kept), "the running build's pod {kept} is gone: {listed:?}");
        let workspace = Workspace::of(cluster, &shared.options.namespace);
        ensure!(workspace.going(ended).await?, "the ended build's claim or claim pod is still there");
        ensure!(!workspace.going(running).await?, "the running build's claim or claim pod is going");

        // Once the build ends, its claim goes too.
        ensure!(db.end_unstarted_build(running, BuildStatus::Succeeded, &[]).await?);
        collector.tick().await?;
        ensure!(!runtime.list().await?.iter().any(|step| step.handle == kept), "{kept} is still there");
        ensure!(workspace.going(running).await?, "the ended build's claim or claim pod is still there");
    }
    Ok(())
}

/// The builds' own claims and the pods holding them, as the administrator sees them.
struct Workspace {
    claims: Api<PersistentVolumeClaim>,
    pods: Api<Pod>,
}

impl Workspace {
    fn of(cluster: &Cluster, namespace: &str) -> Workspace {
        Workspace {
            claims: Api::namespaced(cluster.client.clone(), namespace),
            pods: Api::namespaced(cluster.client.clone(), namespace),
        }
    }

    /// Whether the build's claim and claim pod are gone or being deleted
    /// (a claim goes once no pod mounts it).
    async fn going(&self, build: i64) -> anyhow::Result<bool> {
        let name = format!("atc-build-{build}");
        let claim = self.claims.get_opt(&name).await?;
        let pod = self.pods.get_opt(&name).await?;
        Ok(claim.is_none_or(|c| c.metadata.deletion_timestamp.is_some())
            && pod.is_none_or(|p| p.metadata.deletion_timestamp.is_some()))
    }
}
