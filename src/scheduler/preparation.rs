//! What a pending build waits for (`GET /api/v1/builds/:id/preparation`),
//! by the scheduler's own rules: a paused pipeline or job, `max_in_flight`,
//! inputs it could not resolve, or checks a manual trigger waits for.

use std::collections::BTreeMap;

use crate::db::{Build, BuildStatus, Db, DbResult};

/// Why an input blocks, in Concourse's words.
const MISSING_INPUT: &str = "input is not included in resolved candidates";
const CHECKING: &str = "checking for latest available versions";

/// Each condition: `true` when it keeps the build from starting.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Preparation {
    pub build_id: i64,
    pub paused_pipeline: bool,
    pub paused_job: bool,
    pub max_running_builds: bool,
    /// Per input of the job.
    pub inputs: BTreeMap<String, bool>,
    /// Some input blocks (Concourse's `inputs_satisfied`).
    pub unsatisfied_inputs: bool,
    pub missing_input_reasons: BTreeMap<String, String>,
}

/// What `build` waits for; nothing unless it is a job's pending build.
pub async fn preparation(db: &Db, build: &Build) -> DbResult<Preparation> {
    let nothing = Preparation { build_id: build.id, ..Preparation::default() };
    let (Some(pipeline_id), Some(job_name)) = (build.pipeline_id, &build.job_name) else { return Ok(nothing) };
    if build.status != BuildStatus::Pending {
        return Ok(nothing);
    }
    let (Some(pipeline), Some(job)) =
        (db.find_pipeline_by_id(pipeline_id).await?, db.find_job(pipeline_id, job_name).await?)
    else {
        return Ok(nothing);
    };
    let job_config = job.definition.clone();
    let jobs: Vec<_> = db
        .pipeline_jobs(pipeline_id)
        .await?
        .into_iter()
        .map(|j| {
            let definition = j.definition.clone();
            (j, definition)
        })
        .collect();
    let mut prepared = Preparation {
        paused_pipeline: pipeline.paused,
        paused_job: job.paused,
        max_running_builds: super::max_in_flight_reached(db, &job, &job_config, &jobs).await?,
        ..nothing
    };
    // A rerun brings the inputs of the build it reruns.
    let has_own_inputs = !db.build_inputs(build.id).await?.is_empty();
    let (next, resolve_error) = db.next_inputs(job.id).await?;
    let resources = db.pipeline_resources(pipeline_id).await?;
    for input in job_config.inputs() {
        let resolved = next.iter().any(|n| n.name == input.name);
        let reason = if has_own_inputs {
            None
        } else if !resolved {
            Some(
                resolve_error
                    .as_deref()
                    .and_then(|error| reason_for(error, &input.name))
                    .unwrap_or_else(|| MISSING_INPUT.to_string()),
            )
        } else {
            let resource = resources.iter().find(|r| r.name == input.resource);
            let waits = resource.is_some_and(|resource| {
                build.manually_triggered && super::waits_for_check(&input, resource, &resource.config, build)
            });
            waits.then(|| CHECKING.to_string())
        };
        prepared.inputs.insert(input.name.clone(), reason.is_some());
        if let Some(reason) = reason {
            prepared.unsatisfied_inputs = true;
            prepared.missing_input_reasons.insert(input.name, reason);
        }
    }
    Ok(prepared)
}

/// The reason the scheduler gave for `input` in its resolution error
/// (`name: why; other: why`).
fn reason_for(error: &str, input: &str) -> Option<String> {
    let prefix = format!("{input}: ");
    error.split("; ").find_map(|part| part.strip_prefix(&prefix)).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::reason_for;

    #[test]
    fn reasons_are_found_by_input_name() {
        let error = "repo: no versions available; image: no satisfiable builds from passed jobs";
        assert_eq!(reason_for(error, "repo").as_deref(), Some("no versions available"));
        assert_eq!(reason_for(error, "image").as_deref(), Some("no satisfiable builds from passed jobs"));
        assert_eq!(reason_for(error, "other"), None);
    }
}
