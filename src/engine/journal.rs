//! What a build's steps did, recorded as they go (`db::StepRecord`, with
//! the build's events), so that a build picked up again after an atc
//! restart, or by another node, carries on where it was instead of
//! starting over. The plan is run again from the top; each step asks the
//! journal first:
//!
//! - a step that finished is not run again: what it left the build
//!   (artifacts, a version, its exit status) is put back and its outcome
//!   stands, without a new event;
//! - a step that had started is attached to again, from the output already
//!   stored as events, without announcing itself again;
//! - a step that had not started runs as usual.
//!
//! Steps that change nothing outside the build and emit no events of their
//! own (`load_var`, an uploaded input) simply run again.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::event::MetadataField;
use super::exec::Outcome;
use crate::db::RecordedStep;
use crate::runtime::OutputOffset;

/// Where a step stood when its build was taken up again.
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// Not started: run it.
    Fresh,
    /// Started, its output stored as events up to this offset.
    Started(OutputOffset),
    /// Finished: put back what it left and take its outcome.
    Finished(FinishedStep),
}

/// What a finished step left the build, and how it ended.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FinishedStep {
    pub outcome: RecordedOutcome,
    /// Artifacts it registered, by the name later steps see.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<(String, String)>,
    /// The version it fetched or produced (`version_from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<RecordedVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedVersion {
    pub version: Value,
    pub metadata: Vec<MetadataField>,
}

/// An [`Outcome`] that can be recorded: a finished step was not interrupted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordedOutcome {
    #[default]
    Succeeded,
    Failed,
    Errored(String),
}

impl RecordedOutcome {
    /// `None` for an interrupted step: it did not finish.
    pub fn of(outcome: &Outcome) -> Option<RecordedOutcome> {
        match outcome {
            Outcome::Succeeded => Some(RecordedOutcome::Succeeded),
            Outcome::Failed => Some(RecordedOutcome::Failed),
            Outcome::Errored(message) => Some(RecordedOutcome::Errored(message.clone())),
            Outcome::Interrupted => None,
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            RecordedOutcome::Succeeded => Outcome::Succeeded,
            RecordedOutcome::Failed => Outcome::Failed,
            RecordedOutcome::Errored(message) => Outcome::Errored(message.clone()),
        }
    }
}

/// The journal of a build as it was when the build was taken up; empty for
/// a build that starts now.
#[derive(Debug, Default)]
pub struct Journal {
    steps: HashMap<String, Resume>,
}

impl Journal {
    /// The journal from what the database recorded. A result that cannot
    /// be read back counts as a step that started and never finished: it is
    /// attached to (or reported lost), never silently taken as done.
    pub fn from_records(records: Vec<RecordedStep>) -> Journal {
        let steps = records
            .into_iter()
            .map(|record| {
                let offset = OutputOffset { stdout: record.stdout_offset, stderr: record.stderr_offset };
                let resume = match record.result.as_deref().map(serde_json::from_str::<FinishedStep>) {
                    Some(Ok(finished)) => Resume::Finished(finished),
                    Some(Err(err)) => {
                        tracing::warn!(plan_id = %record.plan_id, error = %err, "unreadable step result");
                        Resume::Started(offset)
                    }
                    None => Resume::Started(offset),
                };
                (record.plan_id, resume)
            })
            .collect();
        Journal { steps }
    }

    pub fn resume(&self, plan_id: &str) -> Resume {
        self.steps.get(plan_id).cloned().unwrap_or(Resume::Fresh)
    }

    /// Whether the build was taken up with steps it had begun.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// What a leaf step accumulates while it runs, to be recorded with its
/// last events when it ends: its result, the events that end it, and the
/// runtime steps to stop once that is stored.
#[derive(Debug, Default)]
pub struct LeafEnd {
    pub finished: FinishedStep,
    /// The step's closing events (`finish-*`, its error), held back to be
    /// stored in one transaction with its result.
    pub events: Vec<super::event::BuildEvent>,
    /// Runtime steps that exited and are stopped once the result is stored:
    /// until then, attaching to them again gives the same outcome.
    pub handles: Vec<crate::runtime::StepHandle>,
}

/// The leaf steps running now, by plan id.
#[derive(Debug, Default)]
pub struct LeafEnds {
    running: std::sync::Mutex<HashMap<String, LeafEnd>>,
}

impl LeafEnds {
    pub fn begin(&self, plan_id: &str) {
        self.lock().insert(plan_id.to_string(), LeafEnd::default());
    }

    /// Applies `change` to the step's end if it is a leaf running now;
    /// `false` when it is not (the caller then acts at once).
    pub fn update(&self, plan_id: &str, change: impl FnOnce(&mut LeafEnd)) -> bool {
        match self.lock().get_mut(plan_id) {
            Some(end) => {
                change(end);
                true
            }
            None => false,
        }
    }

    pub fn take(&self, plan_id: &str) -> LeafEnd {
        self.lock().remove(plan_id).unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LeafEnd>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}
