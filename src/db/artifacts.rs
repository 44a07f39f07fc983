//! Artifacts users upload for one-off builds (`fly execute`) and the
//! outputs those builds hand back; the files live in the runtime, a row
//! here names them.

use super::{Db, DbResult, now, on_pool, parent_deleted};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ArtifactRecord {
    pub id: i64,
    pub team_id: i64,
    pub build_id: Option<i64>,
    pub name: String,
    /// The runtime's id of the artifact.
    pub handle: String,
    pub created_at: i64,
}

impl Db {
    pub async fn create_artifact(
        &self,
        team_id: i64,
        build_id: Option<i64>,
        name: &str,
        handle: &str,
    ) -> DbResult<ArtifactRecord> {
        on_pool!(self, pool => sqlx::query_as(
            "INSERT INTO artifacts (team_id, build_id, name, handle, created_at) VALUES ($1, $2, $3, $4, $5)
             RETURNING id, team_id, build_id, name, handle, created_at"
        ).bind(team_id).bind(build_id).bind(name).bind(handle).bind(now()).fetch_one(pool).await)
        .map_err(parent_deleted(if build_id.is_some() { "build" } else { "team" }))
    }

    /// An artifact of a team (artifacts of other teams are never found).
    pub async fn find_artifact(&self, team_id: i64, id: i64) -> DbResult<Option<ArtifactRecord>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT id, team_id, build_id, name, handle, created_at FROM artifacts WHERE team_id = $1 AND id = $2"
        ).bind(team_id).bind(id).fetch_optional(pool).await)?)
    }

    pub async fn build_artifacts(&self, build_id: i64) -> DbResult<Vec<ArtifactRecord>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT id, team_id, build_id, name, handle, created_at FROM artifacts WHERE build_id = $1 ORDER BY id"
        ).bind(build_id).fetch_all(pool).await)?)
    }

    /// Artifacts recorded at or before `cutoff` (unix seconds), oldest first.
    pub async fn artifacts_recorded_by(&self, cutoff: i64) -> DbResult<Vec<ArtifactRecord>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT id, team_id, build_id, name, handle, created_at FROM artifacts WHERE created_at <= $1 ORDER BY id"
        ).bind(cutoff).fetch_all(pool).await)?)
    }

    pub async fn delete_artifact(&self, id: i64) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM artifacts WHERE id = $1").bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
