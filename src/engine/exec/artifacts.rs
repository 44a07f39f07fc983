//! Artifacts crossing a step's boundary: files read from them (task
//! `file:`, `load_var`, `set_pipeline`), and one-off builds' uploaded
//! inputs and downloadable outputs.

use super::StepError;
use super::delegate::StepDelegate;
use super::{Outcome, StepContext};
use crate::engine::plan::{ArtifactInputPlan, ArtifactOutputPlan};
use crate::runtime::Artifact;

/// Reads `ARTIFACT/path/in/it`.
pub async fn read_file(ctx: &StepContext, path: &str) -> Result<Vec<u8>, StepError> {
    let (name, inner) =
        path.split_once('/').filter(|(name, inner)| !name.is_empty() && !inner.is_empty()).ok_or_else(|| {
            format!("'{path}' must be ARTIFACT/PATH: the artifact (a get, or a task output) then the file in it")
        })?;
    let artifact = ctx
        .scope
        .artifact(name)
        .ok_or_else(|| format!("cannot read '{path}': no artifact named '{name}' in this build"))?;
    ctx.build
        .runtime
        .read_file(&artifact, inner)
        .await
        .map_err(|source| StepError::Read { path: path.to_string(), source })
}

pub async fn input(input: &ArtifactInputPlan, delegate: &StepDelegate, ctx: &StepContext) -> Outcome {
    let found = ctx.build.db.find_artifact(ctx.build.info.team_id, input.artifact_id).await;
    match found {
        Ok(Some(record)) => {
            ctx.scope.register_artifact(&input.name, Artifact { id: record.handle });
            Outcome::Succeeded
        }
        Ok(None) => delegate
            .errored(format!("artifact {} does not exist for team '{}'", input.artifact_id, ctx.build.info.team_name)),
        Err(err) => delegate.errored(err.to_string()),
    }
}

/// Makes an artifact of the build downloadable (`fly execute -o`).
pub async fn output(output: &ArtifactOutputPlan, delegate: &StepDelegate, ctx: &StepContext) -> Outcome {
    let Some(artifact) = ctx.scope.artifact(&output.name) else {
        return delegate.errored(format!("no artifact named '{}' to hand back", output.name));
    };
    let info = &ctx.build.info;
    match ctx.build.db.create_artifact(info.team_id, Some(info.id), &output.name, &artifact.id).await {
        Ok(_) => Outcome::Succeeded,
        Err(err) => delegate.errored(err.to_string()),
    }
}
