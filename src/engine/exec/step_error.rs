//! Why a step could not run as configured, or why the system failed it:
//! what its `error` event says, with the cause kept, so a caller can tell a
//! configuration problem from a database or runtime failure.

use crate::config::vars::InterpolationError;
use crate::db::DbError;
use crate::engine::plan::MAX_STEP_DEPTH;
use crate::engine::state::VarsError;
use crate::runtime::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The step's configuration cannot be used as it is (a missing input,
    /// a param of the wrong shape, ...).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Vars(#[from] VarsError),
    #[error(transparent)]
    Interpolation(#[from] InterpolationError),
    /// A file the step reads from an artifact (`file:`, `load_var`,
    /// `set_pipeline`).
    #[error("cannot read '{path}': {source}")]
    Read {
        path: String,
        #[source]
        source: RuntimeError,
    },
    #[error(transparent)]
    Database(#[from] DbError),
    /// Steps built while running (an `across`'s substeps) nest deeper than
    /// any step may.
    #[error("steps nest more than {MAX_STEP_DEPTH} deep")]
    TooDeep,
}

impl From<String> for StepError {
    fn from(message: String) -> StepError {
        StepError::Invalid(message)
    }
}

impl From<&str> for StepError {
    fn from(message: &str) -> StepError {
        StepError::Invalid(message.to_string())
    }
}
