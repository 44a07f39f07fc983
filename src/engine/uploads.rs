//! `fly execute`'s artifacts as the API hands them over: an upload stored
//! by the runtime and recorded for its team, and a recorded artifact
//! streamed back. The API reaches the runtime only through here.

use crate::db::{ArtifactRecord, DbError};
use crate::runtime::{Artifact, RuntimeError, TarGzStream, UploadLimits};

use super::Engine;

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Larger than `--artifact-upload-max-size` or what it unpacks to.
    #[error("{0}")]
    TooLarge(String),
    /// Not a gzipped tarball, or entries that would land outside it.
    #[error("{0}")]
    Invalid(String),
    /// The runtime could not store it (its disk, not the upload).
    #[error("cannot store an upload: {0}")]
    Storage(RuntimeError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Engine {
    /// Stores an uploaded gzipped tarball as an artifact of team `team_id`.
    pub async fn upload_artifact(
        &self,
        team_id: i64,
        tgz: TarGzStream,
        limits: UploadLimits,
    ) -> Result<ArtifactRecord, UploadError> {
        let artifact = self.runtime.import_artifact(tgz, limits).await.map_err(|err| match err {
            RuntimeError::UploadTooLarge(message) => UploadError::TooLarge(message),
            RuntimeError::Setup(message) => UploadError::Invalid(message),
            other => UploadError::Storage(other),
        })?;
        match self.db.create_artifact(team_id, None, "", &artifact.id).await {
            Ok(record) => Ok(record),
            Err(err) => {
                // Nothing names the files (the team was deleted meanwhile, say): release them now.
                if let Err(release) = self.runtime.release(vec![artifact]).await {
                    tracing::warn!(error = %release, "cannot release an unrecorded artifact");
                }
                Err(err.into())
            }
        }
    }

    /// The files of a recorded artifact, as a gzipped tarball.
    pub async fn download_artifact(&self, record: &ArtifactRecord) -> Result<TarGzStream, RuntimeError> {
        self.runtime.export_artifact(&Artifact { id: record.handle.clone() }).await
    }
}
