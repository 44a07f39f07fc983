//! Running one build from its stored plan to its final status.

use std::sync::Arc;

use opentelemetry::trace::{FutureExt, TraceContextExt};
use tokio_util::sync::CancellationToken;

use super::event::{BuildEvent, Origin};
use super::event_hub::{EventHub, HubMessage};
use super::event_log::EventLog;
use super::exec::{self, Outcome, StepContext};
use super::journal::Journal;
use super::plan::{Plan, Step};
use super::redaction::Redactor;
use super::span_facts;
use super::state::{BuildInfo, BuildState, Credentials, Scope};
use crate::creds::{BuildCredentials, Managed, SecretPolicy};
use crate::db::{Build, BuildLease, BuildStatus, Channel, Db, DbError, DbResult, NewEvent};
use crate::metric;
use crate::runtime::Runtime;
use crate::telemetry::{propagation, spans};

/// What every build run needs from the engine.
pub struct RunnerContext {
    pub db: Db,
    pub runtime: Arc<dyn Runtime>,
    pub hub: Arc<EventHub>,
    pub external_url: String,
    /// atc's credential manager (`--dummy-creds-var`, `--vault-*`), cached and retried.
    pub credentials: Arc<Managed>,
    /// The cache and retries of pipelines' var sources.
    pub secret_policy: SecretPolicy,
    /// `--enable-redact-secrets`: secrets are replaced in what builds record.
    pub redact_secrets: bool,
}

/// Why a build cannot run at all: it ends errored, saying so.
#[derive(Debug, thiserror::Error)]
enum Unrunnable {
    #[error("the build has no plan")]
    NoPlan,
    #[error(transparent)]
    VarSource(#[from] crate::creds::SourceSetupError),
    /// What is stored of the build or its pipeline cannot be read.
    #[error(transparent)]
    Stored(#[from] DbError),
}

/// The credentials of a build: atc's manager and its pipeline's var
/// sources, set up (their configs interpolated) in the order they use each other.
async fn build_credentials(ctx: &RunnerContext, build: &Build) -> Result<Credentials, Unrunnable> {
    let Some(pipeline_id) = build.pipeline_id else {
        return Ok(Arc::new(BuildCredentials::global(ctx.credentials.clone())));
    };
    let config = ctx.db.pipeline_config(pipeline_id).await?;
    let config = config.map(|(config, _)| config).unwrap_or_default();
    let sources = config.get("var_sources").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let credentials = BuildCredentials::for_pipeline(
        ctx.credentials.clone(),
        ctx.secret_policy,
        &sources,
        &build.team_name,
        build.pipeline_name.as_deref(),
    )
    .await?;
    Ok(Arc::new(credentials))
}

/// The status a build ends with, given how its plan ended.
pub fn final_status(outcome: &Outcome, aborted: bool) -> BuildStatus {
    match outcome {
        Outcome::Succeeded => BuildStatus::Succeeded,
        Outcome::Failed => BuildStatus::Failed,
        Outcome::Errored(_) => BuildStatus::Errored,
        Outcome::Interrupted if aborted => BuildStatus::Aborted,
        Outcome::Interrupted => BuildStatus::Errored,
    }
}

pub fn build_info(build: &Build, external_url: &str) -> BuildInfo {
    BuildInfo {
        id: build.id,
        name: build.name.clone(),
        team_id: build.team_id,
        team_name: build.team_name.clone(),
        pipeline_id: build.pipeline_id,
        pipeline_name: build.pipeline_name.clone(),
        pipeline_instance_vars: build.pipeline_instance_vars.clone(),
        job_id: build.job_id,
        job_name: build.job_name.clone(),
        created_by: build.created_by.clone(),
        external_url: external_url.to_string(),
    }
}

/// What stops a running build, and how it ends then.
pub struct BuildControl {
    /// Stops it as aborted (`fly abort-build`).
    pub abort: CancellationToken,
    /// Stops it as errored: atc is going away.
    pub shutdown: CancellationToken,
    /// Stops it without a word: another node took it over.
    pub lease_lost: CancellationToken,
}

/// A build taken up again: its node stopped renewing its lease (it died,
/// was stopped or lost the database), or atc restarted under it.
pub struct Resumed {
    /// The node that ran it before.
    pub previous_owner: Option<String>,
}

/// Runs a started build under `lease`, or carries on with one `resumed`
/// where its journal says it was. Returns the final status.
pub async fn run_build(
    ctx: &RunnerContext,
    build: Build,
    lease: BuildLease,
    control: BuildControl,
    resumed: Option<Resumed>,
) -> DbResult<BuildStatus> {
    let BuildControl { abort, shutdown, lease_lost } = control;
    let resumed = match resumed {
        Some(resumed) => {
            let journal = Journal::from_records(ctx.db.recorded_steps(build.id).await?);
            Some((journal, resumed.previous_owner))
        }
        None if !ctx.db.mark_build_running(&lease).await? => return Ok(BuildStatus::Aborted),
        None => None,
    };
    let redactor = Redactor::new(ctx.redact_secrets);
    let events = EventLog::open(ctx.db.clone(), ctx.hub.clone(), lease, lease_lost.clone(), redactor).await?;
    if resumed.is_none() {
        events.emit(BuildEvent::Status { status: "started".into(), time: crate::db::now() });
    }

    let plan = match ctx.db.build_plan(build.id).await {
        Ok(Some(plan)) => Ok(plan),
        Ok(None) => Err(Unrunnable::NoPlan),
        // The build cannot run, but it can end saying why.
        Err(err @ DbError::CorruptRow { .. }) => Err(Unrunnable::Stored(err)),
        Err(err) => return Err(err),
    };
    let (credentials, plan) = match build_credentials(ctx, &build).await {
        Ok(credentials) => (credentials, plan),
        Err(err) => (Arc::new(BuildCredentials::global(ctx.credentials.clone())), Err(err)),
    };
    let state = Arc::new(BuildState::new(
        build_info(&build, &ctx.external_url),
        ctx.db.clone(),
        ctx.runtime.clone(),
        events.clone(),
        credentials,
        resumed,
    ));
    let trace = start_build_span(ctx, &build, &state, plan.as_ref().ok()).await?;
    let started = std::time::Instant::now();
    let is_check = build.resource_name.is_some() || build.resource_type_name.is_some();
    if is_check {
        metric::CheckStarted.emit();
    } else {
        metric::BuildStarted { job: job_ref(&build) }.emit();
    }
    let outcome = match plan {
        Ok(plan) => {
            let cancel = CancellationToken::new();
            let stop = cancel.clone();
            let build_abort = state.abort.clone();
            let watcher = tokio::spawn(async move {
                tokio::select! {
                    _ = abort.cancelled() => build_abort.cancel(),
                    _ = shutdown.cancelled() => {}
                    _ = lease_lost.cancelled() => {}
                }
                stop.cancel();
            });
            let step_ctx =
                StepContext { build: state.clone(), cancel, scope: Scope::root(), trace: trace.clone(), depth: 0 };
            let outcome = exec::run(&plan, &step_ctx).with_context(trace.clone()).await;
            watcher.abort();
            if outcome == Outcome::Interrupted && !state.is_aborted() && !events.lease_lost() {
                state.step_error(&plan.id, "atc stopped while this build was running; its steps were stopped");
            }
            outcome
        }
        Err(unrunnable) => {
            let message = unrunnable.to_string();
            events.emit(BuildEvent::Error {
                origin: Origin::default(),
                message: message.clone(),
                time: crate::db::now(),
            });
            Outcome::Errored(message)
        }
    };

    let status = final_status(&outcome, state.is_aborted());
    // Only the node holding the lease records how the build ended.
    let ended = finish(&ctx.db, &ctx.hub, &events, &build, status).await;
    if !matches!(ended, Err(DbError::LeaseLost { .. })) {
        record_end(&build, status, started.elapsed(), &trace, state.timed_out());
    }
    // After the status, so nobody waits on the deletion; never once the
    // build was taken over, whose new owner still needs its artifacts.
    if !events.lease_lost() {
        state.release_artifacts().await;
    }
    ended.map(|()| status)
}

/// The build's metrics and the end of its span, from one reading of how
/// it ended (a timeout's `failed` is a `timeout` result for both).
fn record_end(
    build: &Build,
    status: BuildStatus,
    duration: std::time::Duration,
    trace: &opentelemetry::Context,
    timed_out: bool,
) {
    let end = span_facts::build_end(status, timed_out);
    if build.resource_name.is_some() || build.resource_type_name.is_some() {
        metric::CheckFinished { status: status.as_str() }.emit();
    } else {
        let span = trace.span().span_context().clone();
        let job = job_ref(build);
        metric::BuildFinished { job, status: status.as_str(), result: end.result, duration, span: &span }.emit();
    }
    spans::end_build(trace, end);
}

/// The job a build counts under in metrics (empty names for one-off builds).
fn job_ref(build: &Build) -> metric::JobRef<'_> {
    metric::JobRef {
        team: &build.team_name,
        pipeline: build.pipeline_name.as_deref().unwrap_or_default(),
        job: build.job_name.as_deref().unwrap_or_default(),
    }
}

/// Starts the build's span: under the API request that created the build
/// (its context was stored with the build), else as a root linked to the
/// spans behind its new inputs; a rerun links to the build it repeats. The span's own
/// context replaces the stored one, for whatever outlives this process.
async fn start_build_span(
    ctx: &RunnerContext,
    build: &Build,
    state: &BuildState,
    plan: Option<&Plan>,
) -> DbResult<opentelemetry::Context> {
    let stored = ctx.db.build_span_context(build.id).await?;
    let parent = stored.as_deref().map(propagation::restored_context).unwrap_or_default();
    let mut sources = Vec::new();
    if !parent.span().span_context().is_valid() {
        sources = ctx.db.new_input_span_contexts(build.id).await?;
    }
    if let Some(original) = build.rerun_of {
        sources.extend(ctx.db.build_span_context(original).await?);
    }
    let links = sources
        .iter()
        .map(|text| propagation::restored_context(text).span().span_context().clone())
        .filter(|link| link.is_valid())
        .collect();
    let resource = match plan.map(|p| &p.step) {
        Some(Step::Check(check)) => Some((check.name.as_str(), check.type_.as_str())),
        _ => None,
    };
    let trace = span_facts::build_span(&state.info, resource, state.build_env().build_url()).start(&parent, links);
    if let Some(own) = propagation::stored_context(&trace) {
        ctx.db.set_build_span_context(build.id, &own).await?;
    }
    Ok(trace)
}

/// Records the final status (the last event and the build row, together,
/// under the build's lease), then tells watchers, the scheduler (a
/// finished build can satisfy `passed` or free a slot) and the collector
/// (whatever of the build's steps the runtime still has, pods included,
/// goes now rather than at its next pass).
pub async fn finish(db: &Db, hub: &EventHub, events: &EventLog, build: &Build, status: BuildStatus) -> DbResult<()> {
    events.finish(status).await?;
    hub.publish(build.id, HubMessage::Finished);
    if let Some(job_id) = build.job_id {
        db.notify(Channel::Scheduler, &job_id.to_string()).await?;
    }
    db.notify(Channel::Collector, "").await?;
    Ok(())
}

/// Ends a build that never began running with `status`, after `error` if
/// given; false when it had begun running (its node ends it) or had ended.
/// It is counted and traced as every build that ends is: a moment's run,
/// under the request that created it.
pub async fn end_unstarted(db: &Db, build: &Build, status: BuildStatus, error: Option<String>) -> DbResult<bool> {
    let build_id = build.id;
    let time = crate::db::now();
    let error = error.map(|message| BuildEvent::Error { origin: Origin::default(), message, time });
    let last = BuildEvent::Status { status: status.as_str().to_string(), time };
    let events: Vec<NewEvent> = error
        .iter()
        .chain([&last])
        .map(|event| NewEvent {
            kind: event.kind().to_string(),
            version: event.version().to_string(),
            payload: event.payload().to_string(),
        })
        .collect();
    let ended = db.end_unstarted_build(build_id, status, &events).await?;
    if !ended {
        return Ok(false);
    }
    // Watchers on every node read the end now; a lost announcement only delays it.
    if let Err(err) = super::event_notice::announce(db, build_id, None).await {
        tracing::warn!(build_id, error = %err, "cannot announce the end of a build");
    }
    let stored = db.build_span_context(build_id).await?;
    let parent = stored.as_deref().map(propagation::restored_context).unwrap_or_default();
    let trace = span_facts::build_span(&build_info(build, ""), None, None).start(&parent, Vec::new());
    if build.resource_name.is_some() || build.resource_type_name.is_some() {
        metric::CheckStarted.emit();
    } else {
        metric::BuildStarted { job: job_ref(build) }.emit();
    }
    record_end(build, status, std::time::Duration::ZERO, &trace, false);
    Ok(true)
}
