//! What the engine's builds, steps and hooks tell their spans, in the plain
//! terms of `telemetry::spans` (which knows nothing of the engine).

use super::exec::Outcome;
use super::state::BuildInfo;
use crate::db::BuildStatus;
use crate::telemetry::spans::{BuildEnd, BuildSpan, CheckedResource, RunResult, StepEnd};

/// The span of the build `info`; `checked` is a check build's resource
/// and its type.
pub fn build_span<'a>(info: &'a BuildInfo, checked: Option<(&'a str, &'a str)>, url: Option<String>) -> BuildSpan<'a> {
    BuildSpan {
        id: info.id,
        team: &info.team_name,
        name: &info.name,
        pipeline: info.pipeline_name.as_deref(),
        job: info.job_name.as_deref(),
        checked_resource: checked.map(|(name, type_)| CheckedResource { name, type_ }),
        url,
    }
}

/// How a build with final `status` ended: the one mapping of statuses to
/// CI/CD results, for its span and its metrics alike.
pub fn build_end(status: BuildStatus, timed_out: bool) -> BuildEnd<'static> {
    let result = match status {
        BuildStatus::Succeeded => RunResult::Success,
        BuildStatus::Failed if timed_out => RunResult::Timeout,
        BuildStatus::Failed => RunResult::Failure,
        BuildStatus::Aborted => RunResult::Cancellation,
        BuildStatus::Errored | BuildStatus::Pending | BuildStatus::Started => RunResult::Error,
    };
    BuildEnd { result, status: status.as_str() }
}

/// How a step with `outcome` ended (`exit_status` is its process's, when it
/// ran one).
pub fn step_end(outcome: &Outcome, exit_status: Option<i32>, timed_out: bool) -> StepEnd<'_> {
    let result = match outcome {
        Outcome::Succeeded => RunResult::Success,
        Outcome::Failed if timed_out => RunResult::Timeout,
        Outcome::Failed => RunResult::Failure,
        Outcome::Interrupted => RunResult::Cancellation,
        Outcome::Errored(message) => return StepEnd::Errored { message },
    };
    StepEnd::Finished { result, exit_status }
}

/// Why a hook's steps could not run, when they could not.
pub fn hook_error(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Errored(message) => Some(message),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_statuses_map_to_cicd_results() {
        let result = |status, timed_out| build_end(status, timed_out).result;
        assert_eq!(result(BuildStatus::Succeeded, false), RunResult::Success);
        assert_eq!(result(BuildStatus::Failed, false), RunResult::Failure);
        assert_eq!(result(BuildStatus::Failed, true), RunResult::Timeout);
        assert_eq!(result(BuildStatus::Errored, false), RunResult::Error);
        assert_eq!(result(BuildStatus::Aborted, false), RunResult::Cancellation);
    }

    #[test]
    fn step_outcomes_map_to_cicd_results() {
        let result = |outcome: &Outcome, timed_out| match step_end(outcome, Some(1), timed_out) {
            StepEnd::Finished { result, .. } => Some(result),
            StepEnd::Errored { .. } => None,
        };
        assert_eq!(result(&Outcome::Succeeded, false), Some(RunResult::Success));
        assert_eq!(result(&Outcome::Failed, false), Some(RunResult::Failure));
        assert_eq!(result(&Outcome::Failed, true), Some(RunResult::Timeout));
        assert_eq!(result(&Outcome::Interrupted, false), Some(RunResult::Cancellation));
        assert_eq!(result(&Outcome::Errored("no image".into()), false), None);
    }
}
