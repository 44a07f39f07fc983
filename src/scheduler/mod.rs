//! The scheduler component: for every job of every running pipeline it
//! resolves the inputs of the next build, creates a build when a
//! triggering input has a version the job has not run with, and starts
//! pending builds as far as the job's limits allow (`serial`,
//! `serial_groups`, `max_in_flight`, paused jobs and pipelines).

pub mod algorithm;
pub mod preparation;

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use serde_json::Value;

use crate::component::{Component, ComponentFuture};
use crate::config::{self, glob_match};
use crate::db::{
    Build, BuildPlan, BuildStatus, Channel, Db, DbResult, Job, LockKind, NewBuild, NextInput, Pipeline, Resource,
    VersionOwner,
};
use crate::engine::compile::{JobContext, PlanIds, compile_job};
use crate::lidar::{CheckTarget, request_check};
use crate::telemetry::spans::{InputResolution, SchedulingPass};
use algorithm::{History, InputSpec, VersionChoice, VersionEntry};

pub struct Scheduler {
    db: Db,
}

impl Component for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    fn wake_channel(&self) -> Option<Channel> {
        Some(Channel::Scheduler)
    }

    fn tick(&self) -> ComponentFuture<'_> {
        Box::pin(async move { Ok(self.schedule_all().await?) })
    }
}

/// What scheduling one job did, for its span.
struct JobPass {
    /// It created or started a build.
    did_work: bool,
    /// When resolving its inputs began and ended.
    resolution: InputResolution,
}

/// One pipeline's state for a scheduling pass.
struct PipelineState {
    pipeline: Pipeline,
    jobs: Vec<(Job, config::Job)>,
    resources: HashMap<String, Resource>,
    resource_configs: HashMap<String, Value>,
    resource_type_configs: HashMap<String, Value>,
    history: History,
}

impl Scheduler {
    pub fn new(db: Db) -> Scheduler {
        Scheduler { db }
    }

    pub async fn schedule_all(&self) -> DbResult<()> {
        for pipeline in self.db.schedulable_pipelines().await? {
            let state = self.load(pipeline).await?;
            for (job, config) in &state.jobs {
                if job.paused {
                    continue;
                }
                // Another node may be scheduling this job right now.
                let Some(_lock) = self.db.try_lock(LockKind::SchedulingJob, job.id).await? else { continue };
                let began = std::time::SystemTime::now();
                match self.schedule_job(&state, job, config).await {
                    Ok(pass) if !pass.did_work => {}
                    Ok(pass) => SchedulingPass {
                        pipeline: &state.pipeline.name,
                        job: &job.name,
                        started: began,
                        inputs_resolved: pass.resolution,
                    }
                    .record(),
                    Err(err) => {
                        tracing::warn!(job = %job.name, pipeline = %state.pipeline.name, error = %err, "cannot schedule job")
                    }
                }
            }
        }
        Ok(())
    }

    async fn load(&self, pipeline: Pipeline) -> DbResult<PipelineState> {
        let db = &self.db;
        let jobs = db
            .pipeline_jobs(pipeline.id)
            .await?
            .into_iter()
            .map(|job| {
                let definition = job.definition.clone();
                (job, definition)
            })
            .collect();
        let resources: HashMap<String, Resource> =
            db.pipeline_resources(pipeline.id).await?.into_iter().map(|r| (r.name.clone(), r)).collect();
        let resource_configs = resources.iter().map(|(name, r)| (name.clone(), r.config.clone())).collect();
        let resource_type_configs =
            db.pipeline_resource_types(pipeline.id).await?.into_iter().map(|t| (t.name, t.config)).collect();
        let mut history = History::default();
        for version in db.pipeline_versions(pipeline.id).await? {
            history.versions.entry(version.resource_id).or_default().push(VersionEntry {
                id: version.id,
                check_order: version.check_order,
                enabled: version.enabled,
            });
        }
        let mut builds: HashMap<i64, HashMap<i64, Vec<(i64, i64)>>> = HashMap::new();
        for row in db.succeeded_with(pipeline.id).await? {
            builds
                .entry(row.job_id)
                .or_default()
                .entry(row.build_id)
                .or_default()
                .push((row.resource_id, row.version_id));
        }
        history.successful_builds =
            builds.into_iter().map(|(job, builds)| (job, builds.into_iter().collect())).collect();
        Ok(PipelineState { pipeline, jobs, resources, resource_configs, resource_type_configs, history })
    }

    /// How a get chooses its version: a pin on the resource (config, then
    /// API) wins over the get's own `version:`.
    async fn version_choice(&self, resource: &Resource, get_version: &Option<Value>) -> DbResult<VersionChoice> {
        let config = &resource.config;
        let owner = VersionOwner::Resource(resource.id);
        let pinned_by_content = |version: Value| async move {
            match self.db.find_version_by_content(owner, &resource.config_hash, &version).await? {
                Some(found) => DbResult::Ok(VersionChoice::Pinned(found.id)),
                None => Ok(VersionChoice::PinnedMissing(version.to_string())),
            }
        };
        if let Some(pin) = config.get("version").filter(|v| v.is_object()) {
            return pinned_by_content(pin.clone()).await;
        }
        if let Some(id) = resource.api_pinned_version_id {
            return Ok(VersionChoice::Pinned(id));
        }
        Ok(match get_version {
            Some(Value::String(every)) if every == "every" => VersionChoice::Every,
            Some(version @ Value::Object(_)) => return pinned_by_content(version.clone()).await,
            _ => VersionChoice::Latest,
        })
    }

    async fn schedule_job(&self, state: &PipelineState, job: &Job, config: &config::Job) -> DbResult<JobPass> {
        let db = &self.db;
        let job_ids: HashMap<&str, i64> = state.jobs.iter().map(|(j, _)| (j.name.as_str(), j.id)).collect();
        let mut specs = Vec::new();
        let mut triggers = HashSet::new();
        for input in config.inputs() {
            let Some(resource) = state.resources.get(&input.resource) else { continue };
            let passed = input
                .passed
                .iter()
                .flat_map(|pattern| job_ids.iter().filter(|(name, _)| glob_match(pattern, name)).map(|(_, id)| *id))
                .collect();
            if input.trigger {
                triggers.insert(input.name.clone());
            }
            specs.push(InputSpec {
                name: input.name.clone(),
                resource: resource.id,
                passed,
                version: self.version_choice(resource, &input.version).await?,
            });
        }
        let resolving = SystemTime::now();
        let mut history = state.history.clone();
        history.used = db.job_input_usage(job.id).await?;
        let next = match algorithm::resolve(&specs, &history) {
            Ok(resolved) => {
                let next: Vec<NextInput> = resolved
                    .iter()
                    .map(|r| NextInput {
                        name: r.name.clone(),
                        resource_id: r.resource,
                        version_id: r.version,
                        first_occurrence: r.first_occurrence,
                    })
                    .collect();
                db.save_next_inputs(job.id, &next, None).await?;
                Some(next)
            }
            Err(reasons) => {
                let message: Vec<String> = reasons.iter().map(|(name, why)| format!("{name}: {why}")).collect();
                db.save_next_inputs(job.id, &[], Some(&message.join("; "))).await?;
                None
            }
        };

        let resolution =
            InputResolution { system: db.backend().span_system(), started: resolving, ended: SystemTime::now() };
        let pending = db.pending_builds(job.id).await?;
        let new_trigger =
            next.as_ref().is_some_and(|n| n.iter().any(|i| i.first_occurrence && triggers.contains(&i.name)));
        let created = new_trigger && pending.is_empty();
        if created {
            let number = db.next_build_number(job.id).await?;
            db.create_build(&NewBuild {
                team_id: state.pipeline.team_id,
                pipeline_id: Some(state.pipeline.id),
                job_id: Some(job.id),
                name: number.to_string(),
                ..NewBuild::default()
            })
            .await?;
            crate::metric::JobScheduled.emit();
        }
        let started = self.start_pending(state, job, config, next.as_deref()).await?;
        Ok(JobPass { did_work: created || started, resolution })
    }

    /// A manual trigger runs with what its inputs have now: inputs without
    /// `passed` whose resource is not pinned and was last checked before
    /// the build was created are checked first (also `check_every: never`
    /// ones). True while such checks are wanted or running.
    async fn check_inputs_first(&self, state: &PipelineState, config: &config::Job, build: &Build) -> DbResult<bool> {
        let mut waiting = false;
        for input in config.inputs() {
            let Some(resource) = state.resources.get(&input.resource) else { continue };
            let resource_config = &state.resource_configs[&input.resource];
            if !waits_for_check(&input, resource, resource_config, build) {
                continue;
            }
            waiting = true;
            let owner = VersionOwner::Resource(resource.id);
            if self.db.check_in_progress(owner).await?.is_none() {
                let target = CheckTarget {
                    pipeline: &state.pipeline,
                    owner,
                    name: &resource.name,
                    config: resource_config,
                    resource_types: &state.resource_type_configs,
                };
                request_check(&self.db, &target, None).await?;
            }
        }
        Ok(waiting)
    }

    /// Starts the job's pending builds, oldest first, while its limits
    /// allow; returns whether it started (or ended) any.
    async fn start_pending(
        &self,
        state: &PipelineState,
        job: &Job,
        config: &config::Job,
        next: Option<&[NextInput]>,
    ) -> DbResult<bool> {
        let db = &self.db;
        let mut changed = false;
        let pending = db.pending_builds(job.id).await?;
        if pending.is_empty() {
            return Ok(false);
        }
        // A build triggered just after the pipeline was set must run with
        // the new configuration (a new pin, a new plan), not with what this
        // pass read before: leave it to the pass the change brings.
        let current = db.find_pipeline_by_id(state.pipeline.id).await?.map(|p| p.config_version);
        if current != Some(state.pipeline.config_version) {
            db.notify(Channel::Scheduler, &job.id.to_string()).await?;
            return Ok(false);
        }
        for build in pending {
            if max_in_flight_reached(db, job, config, &state.jobs).await? {
                break;
            }
            // A rerun brings its inputs; other builds take the resolved ones.
            let mut inputs =
                db.build_inputs(build.id).await?.into_iter().map(|i| (i.name, i.version_id)).collect::<Vec<_>>();
            if inputs.is_empty() && build.manually_triggered && self.check_inputs_first(state, config, &build).await? {
                // It starts on the pass after those checks end.
                break;
            }
            if inputs.is_empty() {
                let Some(next) = next else { break };
                for input in next {
                    db.record_build_input(build.id, input).await?;
                }
                inputs = next.iter().map(|i| (i.name.clone(), i.version_id)).collect();
            }
            let mut versions = HashMap::new();
            for (name, version_id) in inputs {
                if let Some(version) = db.version_json(version_id).await? {
                    versions.insert(name, version);
                }
            }
            let ctx = JobContext {
                resources: &state.resource_configs,
                resource_types: &state.resource_type_configs,
                versions: &versions,
            };
            changed = true;
            match compile_job(&job.config, &ctx, &mut PlanIds::starting_at(build.id as u64 * 1000)) {
                Ok(plan) => {
                    if db.start_build(build.id, &BuildPlan::new(plan)).await? {
                        db.notify(Channel::BuildTracker, &build.id.to_string()).await?;
                    }
                }
                Err(err) => {
                    // The build can never run: say why and end it.
                    crate::engine::runner::end_unstarted(db, &build, BuildStatus::Errored, Some(err.to_string()))
                        .await?;
                }
            }
        }
        Ok(changed)
    }
}

/// Whether a manually triggered build's input waits for a check of its
/// resource first: one without `passed`, not pinned, whose resource was
/// last checked before the build was created.
pub(crate) fn waits_for_check(
    input: &config::JobInput,
    resource: &Resource,
    resource_config: &Value,
    build: &Build,
) -> bool {
    let pinned =
        resource.api_pinned_version_id.is_some() || resource_config.get("version").is_some_and(Value::is_object);
    input.passed.is_empty() && !pinned && resource.last_check_end < build.create_time
}

/// Whether the job may start no more builds now: `max_in_flight` (1 with
/// `serial` or `serial_groups`, where jobs sharing a group count against
/// one another) of its `jobs` are running.
pub(crate) async fn max_in_flight_reached(
    db: &Db,
    job: &Job,
    config: &config::Job,
    jobs: &[(Job, config::Job)],
) -> DbResult<bool> {
    let limit = config.max_in_flight();
    if limit == 0 {
        return Ok(false);
    }
    let group: Vec<i64> = if config.serial_groups.is_empty() {
        vec![job.id]
    } else {
        jobs.iter()
            .filter(|(_, other)| other.serial_groups.iter().any(|g| config.serial_groups.contains(g)))
            .map(|(j, _)| j.id)
            .collect()
    };
    Ok(db.running_builds(&group).await? >= limit)
}
