//! Steps that run a resource type: `get` (`in`), `put` (`out`) and
//! `check`, through the resource protocol.

use serde_json::Value;

use super::StepError;
use super::delegate::StepDelegate;
use super::{Outcome, StepContext};
use crate::db::{Channel, DbError, VersionOwner};
use crate::engine::event::{BuildEvent, MetadataField, Origin};
use crate::engine::plan::{CheckPlan, GetPlan, PutPlan, TypeImage};
use crate::engine::state::{FetchedVersion, VarsError};
use crate::engine::step_process::trace_context;
use crate::resource::{self, ResourceError, ResourceRun, Version};
use crate::runtime::{CustomResourceType, ImageSpec, ResourceTypeImage, RuntimeError};
use crate::telemetry::propagation;

/// How a resource step ended, before it becomes an [`Outcome`].
enum Failure {
    /// The script failed (non-zero exit): the step failed.
    Failed(String),
    /// Misconfiguration or a system problem: the step errored.
    Errored(String),
    Interrupted,
}

impl From<ResourceError> for Failure {
    fn from(err: ResourceError) -> Failure {
        match err {
            ResourceError::Runtime(RuntimeError::Interrupted) => Failure::Interrupted,
            ResourceError::Failed { .. } => Failure::Failed(err.to_string()),
            other => Failure::Errored(other.to_string()),
        }
    }
}

impl From<StepError> for Failure {
    fn from(err: StepError) -> Failure {
        Failure::Errored(err.to_string())
    }
}

/// What a step's own checks and the database it writes to answer, in the
/// step's terms: reasons it errored.
macro_rules! errored_by {
    ($($cause:ty),*) => {$(
        impl From<$cause> for Failure {
            fn from(err: $cause) -> Failure {
                Failure::from(StepError::from(err))
            }
        }
    )*};
}

errored_by!(VarsError, DbError, String);

fn finish(delegate: &StepDelegate, result: Result<(), Failure>) -> Outcome {
    match result {
        Ok(()) => Outcome::Succeeded,
        Err(Failure::Interrupted) => Outcome::Interrupted,
        Err(Failure::Failed(message)) => delegate.failed(&message),
        Err(Failure::Errored(message)) => delegate.errored(message),
    }
}

/// Where and how a resource step's script runs. The custom types' sources
/// are interpolated like the resource's own: an image may need credentials.
async fn run(
    ctx: &StepContext,
    plan_id: &str,
    step_type: &str,
    name: &str,
    image: &TypeImage,
    tags: &[String],
) -> Result<ResourceRun, VarsError> {
    let build = &ctx.build;
    let mut custom = Vec::with_capacity(image.custom_types.len());
    for custom_type in &image.custom_types {
        custom.push(CustomResourceType {
            name: custom_type.name.clone(),
            type_: custom_type.type_.clone(),
            source: build.interpolate(&custom_type.source, &ctx.scope).await?,
            privileged: custom_type.privileged,
        });
    }
    Ok(ResourceRun {
        handle: build.handle(step_type, plan_id),
        metadata: build.step_metadata(step_type, name),
        image: ImageSpec::ResourceType(ResourceTypeImage { base_type: image.base_type.clone(), custom }),
        privileged: image.privileged,
        tags: tags.to_vec(),
        env: build.build_env().vars(),
        trace: trace_context(&ctx.trace),
    })
}

/// A version as the protocol wants it: a map of strings.
fn to_version(value: &Value) -> Result<Version, StepError> {
    let map = value.as_object().ok_or_else(|| format!("a version must be a map, got {value}"))?;
    map.iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key.clone(), s.clone())),
            other => Err(StepError::Invalid(format!("version field '{key}' must be a string, got {other}"))),
        })
        .collect()
}

fn version_json(version: &Version) -> Value {
    serde_json::to_value(version).unwrap_or(Value::Null)
}

fn metadata(fields: &[resource::MetadataField]) -> Vec<MetadataField> {
    fields.iter().map(|f| MetadataField { name: f.name.clone(), value: f.value.clone() }).collect()
}

fn params(value: &Value) -> Option<&Value> {
    (!value.is_null()).then_some(value)
}

pub async fn get(plan: &GetPlan, delegate: &StepDelegate, ctx: &StepContext) -> Outcome {
    let build = &ctx.build;
    let plan_id = delegate.plan_id();
    let origin = Origin::step(plan_id);
    delegate.initializing(BuildEvent::InitializeGet { origin: origin.clone(), time: crate::db::now() });
    let result = async {
        let version = match (&plan.version, &plan.version_from) {
            (Some(version), _) => version.clone(),
            (None, Some(from)) => build
                .version_from(from)
                .map(|v| v.version)
                .ok_or_else(|| format!("no version was produced by step {from} to get"))?,
            (None, None) => return Err(Failure::Errored("no version to get".into())),
        };
        let version = to_version(&version)?;
        let source = build.interpolate(&plan.source, &ctx.scope).await?;
        let params_value = build.interpolate(&plan.params, &ctx.scope).await?;
        let resource_run = run(ctx, plan_id, "get", &plan.name, &plan.image, &plan.tags).await?;
        let start = BuildEvent::StartGet { origin: origin.clone(), time: crate::db::now() };
        let fetched =
            resource::get(&delegate.process(ctx, Some(start)), resource_run, &source, params(&params_value), &version)
                .await?;
        build.register_artifact(plan_id, &ctx.scope, &plan.name, fetched.artifact);
        let version = version_json(&fetched.result.version);
        let metadata = metadata(&fetched.result.metadata);
        build.record_version(plan_id, FetchedVersion { version: version.clone(), metadata: metadata.clone() });
        delegate.finished(
            BuildEvent::FinishGet { origin: origin.clone(), exit_status: 0, version, metadata, time: crate::db::now() },
            Some(0),
        );
        Ok(())
    }
    .await;
    if matches!(result, Err(Failure::Failed(_))) {
        delegate.finished(failed_get(origin), Some(1));
    }
    finish(delegate, result)
}

/// A `get` whose script failed ends as Concourse's does: exit status 1, no version.
fn failed_get(origin: Origin) -> BuildEvent {
    BuildEvent::FinishGet { origin, exit_status: 1, version: Value::Null, metadata: Vec::new(), time: crate::db::now() }
}

/// A `put` whose script failed ends as Concourse's does: exit status 1, no version.
fn failed_put(origin: Origin) -> BuildEvent {
    BuildEvent::FinishPut { origin, exit_status: 1, version: Value::Null, metadata: Vec::new(), time: crate::db::now() }
}

/// The artifacts a put sees: all of them, those its params mention
/// (`detect`, also when `inputs` is not given), or those listed.
fn put_inputs(
    plan: &PutPlan,
    params: &Value,
    ctx: &StepContext,
) -> Result<Vec<(String, crate::runtime::Artifact)>, StepError> {
    let all = ctx.scope.all_artifacts();
    let detect = matches!(&plan.inputs, Value::Null) || plan.inputs == "detect";
    match &plan.inputs {
        _ if detect => {
            let mut mentioned = std::collections::BTreeSet::new();
            collect_paths(params, &mut mentioned);
            Ok(all.into_iter().filter(|(name, _)| mentioned.contains(name)).collect())
        }
        Value::String(mode) if mode == "all" => Ok(all.into_iter().collect()),
        Value::Array(names) => names
            .iter()
            .map(|name| {
                let name = name.as_str().ok_or_else(|| format!("put inputs must be names, got {name}"))?;
                all.get(name)
                    .cloned()
                    .map(|artifact| (name.to_string(), artifact))
                    .ok_or_else(|| StepError::Invalid(format!("put input '{name}' is not an artifact of this build")))
            })
            .collect(),
        other => Err(StepError::Invalid(format!("put inputs must be all, detect or a list of names, got {other}"))),
    }
}

/// The first segment of every string in `params` (artifact names in paths).
fn collect_paths(params: &Value, into: &mut std::collections::BTreeSet<String>) {
    match params {
        Value::String(text) => {
            into.insert(text.split('/').next().unwrap_or_default().to_string());
        }
        Value::Array(items) => items.iter().for_each(|item| collect_paths(item, into)),
        Value::Object(map) => map.values().for_each(|item| collect_paths(item, into)),
        _ => {}
    }
}

pub async fn put(plan: &PutPlan, delegate: &StepDelegate, ctx: &StepContext) -> Outcome {
    let build = &ctx.build;
    let plan_id = delegate.plan_id();
    let origin = Origin::step(plan_id);
    delegate.initializing(BuildEvent::InitializePut { origin: origin.clone(), time: crate::db::now() });
    let result = async {
        let source = build.interpolate(&plan.source, &ctx.scope).await?;
        let params_value = build.interpolate(&plan.params, &ctx.scope).await?;
        let inputs = put_inputs(plan, &params_value, ctx)?;
        let mut resource_run = run(ctx, plan_id, "put", &plan.name, &plan.image, &plan.tags).await?;
        if plan.expose_build_created_by
            && let Some(created_by) = &build.info.created_by
        {
            resource_run.env.push(("BUILD_CREATED_BY".into(), created_by.clone()));
        } else {
            resource_run.env.retain(|(key, _)| key != "BUILD_CREATED_BY");
        }
        let start = BuildEvent::StartPut { origin: origin.clone(), time: crate::db::now() };
        // The process (and the log it holds) ends with this statement, before the closing event.
        let produced =
            resource::put(&delegate.process(ctx, Some(start)), resource_run, &source, params(&params_value), &inputs)
                .await?;
        let version = version_json(&produced.version);
        let metadata = metadata(&produced.metadata);
        record_output(ctx, &plan.resource, &version, &metadata).await?;
        build.record_version(plan_id, FetchedVersion { version: version.clone(), metadata: metadata.clone() });
        delegate.finished(
            BuildEvent::FinishPut { origin: origin.clone(), exit_status: 0, version, metadata, time: crate::db::now() },
            Some(0),
        );
        Ok(())
    }
    .await;
    if matches!(result, Err(Failure::Failed(_))) {
        delegate.finished(failed_put(origin), Some(1));
    }
    finish(delegate, result)
}

/// A put's version joins the resource's history, as the build's output.
async fn record_output(
    ctx: &StepContext,
    resource_name: &str,
    version: &Value,
    metadata: &[MetadataField],
) -> Result<(), StepError> {
    let build = &ctx.build;
    let Some(pipeline_id) = build.info.pipeline_id else { return Ok(()) };
    let db = &build.db;
    let Some(resource) = db.find_resource(pipeline_id, resource_name).await? else {
        return Ok(());
    };
    // Shown with the version wherever it is listed: what the script echoed
    // of the build's secrets stays out (the version itself is its identity).
    let metadata = build.redactor().redact_json(serde_json::to_value(metadata).unwrap_or(Value::Null));
    let ids = db
        .save_versions(
            VersionOwner::Resource(resource.id),
            &resource.config_hash,
            &[(version.clone(), metadata)],
            // Builds this version triggers link back to this put.
            propagation::stored_context(&ctx.trace).as_deref(),
        )
        .await?;
    for id in ids {
        db.record_build_output(build.info.id, &resource.name, resource.id, id).await?;
    }
    let _ = db.notify(Channel::Scheduler, "").await;
    Ok(())
}

/// A check build's step: new versions of a resource (or resource type)
/// from `from_version` on, saved to its history.
pub async fn check(plan: &CheckPlan, delegate: &StepDelegate, ctx: &StepContext) -> Outcome {
    let build = &ctx.build;
    let plan_id = delegate.plan_id();
    delegate.initializing(BuildEvent::InitializeCheck {
        origin: Origin::step(plan_id),
        name: plan.name.clone(),
        time: crate::db::now(),
    });
    let result = async {
        let pipeline_id = build.info.pipeline_id.ok_or_else(|| "a check needs a pipeline".to_string())?;
        let db = &build.db;
        let (owner, config_hash) = if !plan.resource.is_empty() {
            let resource = db
                .find_resource(pipeline_id, &plan.resource)
                .await?
                .ok_or_else(|| format!("resource '{}' no longer exists", plan.resource))?;
            (VersionOwner::Resource(resource.id), resource.config_hash)
        } else {
            let resource_type = db
                .find_resource_type(pipeline_id, &plan.resource_type)
                .await?
                .ok_or_else(|| format!("resource type '{}' no longer exists", plan.resource_type))?;
            (VersionOwner::ResourceType(resource_type.id), resource_type.config_hash)
        };
        let started = crate::db::now();
        let checked: Result<(), Failure> = async {
            let from = if plan.from_version.is_null() {
                db.latest_version(owner, &config_hash).await?.map(|v| v.version)
            } else {
                Some(plan.from_version.clone())
            };
            let from = from.map(|v| to_version(&v)).transpose()?;
            let source = build.interpolate(&plan.source, &ctx.scope).await?;
            let run = run(ctx, plan_id, "check", &plan.name, &plan.image, &plan.tags).await?;
            let versions = resource::check(&delegate.process(ctx, None), run, &source, from.as_ref()).await?;
            let batch: Vec<(Value, Value)> =
                versions.iter().map(|v| (version_json(v), Value::Array(Vec::new()))).collect();
            // Builds these versions trigger link back to this check.
            let span_context = propagation::stored_context(&ctx.trace);
            db.save_versions(owner, &config_hash, &batch, span_context.as_deref()).await?;
            Ok(())
        }
        .await;
        // Every check that got this far is recorded, however it ended: a
        // manually triggered build waits for its inputs' checks to end.
        let error = match &checked {
            Ok(()) => None,
            Err(Failure::Failed(message) | Failure::Errored(message)) => Some(build.redact(message)),
            Err(Failure::Interrupted) => Some("interrupted".to_string()),
        };
        db.record_check(owner, started, error.as_deref()).await?;
        // New versions may trigger jobs; a finished check may let a manual build start.
        let _ = db.notify(Channel::Scheduler, "").await;
        checked
    }
    .await;
    finish(delegate, result)
}
