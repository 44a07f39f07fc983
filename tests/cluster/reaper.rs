//! The collector on the Kubernetes runtime: the pod of a build that ended
//! (atc died between recording the end and stopping the step) is deleted,
//! the pod of a running build stays; on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use atc::component::Component;
use atc::db::{BuildStatus, Db, NewBuild, TeamAuth};
use atc::gc::{ARTIFACT_TTL, Collector};
use atc::runtime::k8s::K8sRuntime;
use atc::runtime::{Runtime, StepHandle};

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

        Collector::new(db.clone(), runtime.clone(), ARTIFACT_TTL).tick().await?;
        let listed: Vec<StepHandle> = runtime.list().await?.into_iter().map(|step| step.handle).collect();
        ensure!(!listed.contains(&left), "the ended build's pod {left} is still there: {listed:?}");
        ensure!(listed.contains(&kept), "the running build's pod {kept} is gone: {listed:?}");
        runtime.stop(&kept, Duration::from_secs(1)).await?;
    }
    Ok(())
}
