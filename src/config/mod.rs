//! Pipeline configuration: the YAML model, `((var))` syntax and validation.
//!
//! [`parse`] reads YAML or JSON into a [`Pipeline`]; [`validate`] reports
//! every error and warning at once. The model serializes back to the JSON
//! Concourse returns from `GET .../config`.

pub mod across;
mod glob;
mod identifier;
mod job_patterns;
mod model;
mod parse;
mod sidecar;
mod step;
mod storage;
mod task;
mod validate;
pub mod vars;

use serde::{Deserialize, Serialize};

pub use glob::glob_match;
pub use identifier::{MAX_NAME_CHARS, unusable_name, validate_identifier};
pub use model::{
    BuildLogRetention, Display, Group, Job, JobInput, JobOutput, Pipeline, ResourceConfig, ResourceType, VarSource,
};
pub use parse::{ParseError, from_value, parse, yaml_value};
pub use sidecar::{SidecarEnv, SidecarPort, SidecarResources, TaskSidecar};
pub use step::{
    AcrossVar, GetStep, InParallelStep, LoadVarStep, PutStep, RunStep, SetPipelineStep, Step, StepKind, TaskStep,
};
pub use storage::storage_spec;
pub use task::{ContainerLimits, ImageResource, TaskCache, TaskConfig, TaskInput, TaskOutput, TaskRun};
pub use validate::validate;

/// Something allowed but probably unintended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

/// Everything wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Validation {
    pub errors: Vec<String>,
    pub warnings: Vec<Warning>,
}
