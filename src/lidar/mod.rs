//! Checking resources for new versions. The checker component finds
//! resources (and resource types) due for a check, by their `check_every`
//! or the default interval, and creates a check build for each; the build
//! tracker runs it like any build, so checks have events, logs and spans.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::component::{Component, ComponentFuture};
use crate::db::{BuildPlan, Channel, Db, DbError, DbResult, LockKind, NewBuild, Pipeline, VersionOwner};
use crate::engine::compile::type_image;
use crate::engine::plan::{CheckPlan, Plan, Step};
use crate::telemetry::propagation;
use crate::telemetry::spans::LidarScan;

pub struct Checker {
    db: Db,
    /// `--resource-checking-interval`: for resources without `check_every`.
    resource_interval: Duration,
    /// `--resource-type-checking-interval`.
    resource_type_interval: Duration,
}

impl Component for Checker {
    fn name(&self) -> &'static str {
        "lidar"
    }

    fn wake_channel(&self) -> Option<Channel> {
        Some(Channel::Checker)
    }

    fn tick(&self) -> ComponentFuture<'_> {
        Box::pin(async move { Ok(self.check_due().await?) })
    }
}

/// What to check: a resource or a resource type of a pipeline.
pub struct CheckTarget<'a> {
    pub pipeline: &'a Pipeline,
    pub owner: VersionOwner,
    pub name: &'a str,
    /// The resource's (or type's) configuration as JSON.
    pub config: &'a Value,
    pub resource_types: &'a HashMap<String, Value>,
}

/// When `check_every` says to check, or `None` for `never`.
fn interval(config: &Value, default: Duration) -> Option<Duration> {
    match config.get("check_every").and_then(Value::as_str) {
        Some("never") => None,
        Some(every) => Some(crate::duration::parse(every).unwrap_or(default)),
        None => Some(default),
    }
}

/// How long a manual check waits for another node (or the checker) that
/// is creating a check of the same resource right now.
const MANUAL_CHECK_LOCK_WAIT: Duration = Duration::from_secs(5);

/// A check asked for by a user or a webhook: always a new check build (a
/// running one may be checking from another version), from `from` or the
/// latest version. `None` only when the lock stayed taken for
/// [`MANUAL_CHECK_LOCK_WAIT`].
pub async fn request_check(db: &Db, target: &CheckTarget<'_>, from: Option<Value>) -> DbResult<Option<i64>> {
    let deadline = tokio::time::Instant::now() + MANUAL_CHECK_LOCK_WAIT;
    loop {
        if let Some(_lock) = db.try_lock(lock_kind(target.owner), owner_id(target.owner)).await? {
            return create_check_build(db, target, from).await.map(Some);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A check the interval made due: skipped when another node is starting
/// one, or one is still running. Returns whether it started one.
async fn start_due_check(db: &Db, target: &CheckTarget<'_>) -> DbResult<bool> {
    let Some(_lock) = db.try_lock(lock_kind(target.owner), owner_id(target.owner)).await? else { return Ok(false) };
    if db.check_in_progress(target.owner).await?.is_some() {
        return Ok(false);
    }
    create_check_build(db, target, None).await?;
    Ok(true)
}

fn lock_kind(owner: VersionOwner) -> LockKind {
    match owner {
        VersionOwner::Resource(_) => LockKind::CheckingResource,
        VersionOwner::ResourceType(_) => LockKind::CheckingResourceType,
    }
}

fn owner_id(owner: VersionOwner) -> i64 {
    match owner {
        VersionOwner::Resource(id) | VersionOwner::ResourceType(id) => id,
    }
}

/// Creates the check build and wakes the tracker to run it.
async fn create_check_build(db: &Db, target: &CheckTarget<'_>, from: Option<Value>) -> DbResult<i64> {
    // A resource pinned in its config is checked from the pin, so the
    // pinned version exists even when the resource would not list it.
    let config_pin = match target.owner {
        VersionOwner::Resource(_) => target.config.get("version").filter(|pin| pin.is_object()).cloned(),
        VersionOwner::ResourceType(_) => None,
    };
    let from = from.or(config_pin);
    let type_name = target.config.get("type").and_then(Value::as_str).unwrap_or_default();
    // A custom type is checked with the type it is built on.
    let image_types = match target.owner {
        VersionOwner::Resource(_) => target.resource_types.clone(),
        VersionOwner::ResourceType(_) => target
            .resource_types
            .iter()
            .filter(|(name, _)| name.as_str() != target.name)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let (resource, resource_type) = match target.owner {
        VersionOwner::Resource(_) => (target.name.to_string(), String::new()),
        VersionOwner::ResourceType(_) => (String::new(), target.name.to_string()),
    };
    let plan = Plan {
        id: "1".into(),
        attempts: Vec::new(),
        step: Step::Check(CheckPlan {
            name: target.name.to_string(),
            type_: type_name.to_string(),
            source: target.config.get("source").cloned().unwrap_or(Value::Null),
            image: type_image(&image_types, type_name),
            from_version: from.unwrap_or(Value::Null),
            resource,
            resource_type,
            timeout: target.config.get("check_timeout").and_then(Value::as_str).unwrap_or_default().to_string(),
            // A resource's (or type's) `tags` say where its checks run.
            tags: target
                .config
                .get("tags")
                .and_then(Value::as_array)
                .map(|tags| tags.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
            ..CheckPlan::default()
        }),
    };
    let (resource_id, resource_type_id) = match target.owner {
        VersionOwner::Resource(id) => (Some(id), None),
        VersionOwner::ResourceType(id) => (None, Some(id)),
    };
    let id = db
        .create_one_off_build(NewBuild {
            team_id: target.pipeline.team_id,
            pipeline_id: Some(target.pipeline.id),
            resource_id,
            resource_type_id,
            plan: Some(BuildPlan::new(plan)),
            // A check asked for over the API (or a webhook) is part of that request's trace.
            span_context: propagation::stored_context(&crate::telemetry::current_context()),
            ..NewBuild::default()
        })
        .await?;
    db.notify(Channel::BuildTracker, &id.to_string()).await?;
    Ok(id)
}

impl Checker {
    pub fn new(db: Db, resource_interval: Duration, resource_type_interval: Duration) -> Checker {
        Checker { db, resource_interval, resource_type_interval }
    }

    /// Starts a check of every resource and resource type that is due.
    pub async fn check_due(&self) -> DbResult<()> {
        let began = std::time::SystemTime::now();
        let mut started = 0u64;
        for pipeline in self.db.schedulable_pipelines().await? {
            match self.check_pipeline(&pipeline).await {
                Ok(count) => started += count,
                // Checking it with defaults in place of the damaged row would
                // run checks nobody configured; the other pipelines go on.
                Err(err @ DbError::CorruptRow { .. }) => {
                    tracing::error!(pipeline = %pipeline.name, error = %err, "cannot check the pipeline's resources");
                }
                Err(err) => return Err(err),
            }
        }
        if started > 0 {
            LidarScan { started: began, checks_started: started }.record();
        }
        Ok(())
    }

    /// Starts the due checks of one pipeline; returns how many.
    async fn check_pipeline(&self, pipeline: &Pipeline) -> DbResult<u64> {
        let mut started = 0u64;
        let now = crate::db::now();
        let due = |last_check_end: i64, every: Option<Duration>| {
            every.is_some_and(|every| last_check_end == 0 || now - last_check_end >= every.as_secs() as i64)
        };
        let types = self.db.pipeline_resource_types(pipeline.id).await?;
        let resources = self.db.pipeline_resources(pipeline.id).await?;
        let type_configs: HashMap<String, Value> = types.iter().map(|t| (t.name.clone(), t.config.clone())).collect();
        // Types first: a resource's check may need its type's versions.
        let candidates = types
            .iter()
            .map(|t| {
                (VersionOwner::ResourceType(t.id), &t.name, t.last_check_end, &t.config, self.resource_type_interval)
            })
            .chain(
                resources.iter().map(|r| {
                    (VersionOwner::Resource(r.id), &r.name, r.last_check_end, &r.config, self.resource_interval)
                }),
            );
        for (owner, name, last_check_end, config, default_interval) in candidates {
            if due(last_check_end, interval(config, default_interval)) {
                let target = CheckTarget { pipeline, owner, name, config, resource_types: &type_configs };
                started += u64::from(start_due_check(&self.db, &target).await?);
            }
        }
        Ok(started)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn check_every_sets_the_interval() {
        let default = Duration::from_secs(60);
        assert_eq!(interval(&json!({}), default), Some(default));
        assert_eq!(interval(&json!({ "check_every": "10s" }), default), Some(Duration::from_secs(10)));
        assert_eq!(interval(&json!({ "check_every": "never" }), default), None);
    }
}
