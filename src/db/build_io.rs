//! Which versions builds used and produced, and which versions the
//! scheduler picked for a job's next build.

use super::builds::{BUILD_COLUMNS, BUILD_JOINS, BuildRow};
use serde_json::Value;

use super::stored::Cell;
use super::{Build, Db, DbError, DbResult, WritePool, on_pool};

/// A version a build used or produced, with names as the API shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildVersion {
    /// The input name (a get's name) or, for outputs, the resource's name.
    pub name: String,
    pub resource_id: i64,
    pub resource_name: String,
    pub version_id: i64,
    pub version: Value,
    pub first_occurrence: bool,
}

#[derive(sqlx::FromRow)]
struct BuildVersionRow {
    name: String,
    resource_id: i64,
    resource_name: String,
    version_id: i64,
    version: String,
    first_occurrence: bool,
}

impl TryFrom<BuildVersionRow> for BuildVersion {
    type Error = DbError;

    fn try_from(row: BuildVersionRow) -> DbResult<BuildVersion> {
        Ok(BuildVersion {
            version: Cell::new("resource_versions", row.version_id, "version").parse(&row.version)?,
            name: row.name,
            resource_id: row.resource_id,
            resource_name: row.resource_name,
            version_id: row.version_id,
            first_occurrence: row.first_occurrence,
        })
    }
}

/// An input the scheduler resolved for a job's next build.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct NextInput {
    pub name: String,
    pub resource_id: i64,
    pub version_id: i64,
    pub first_occurrence: bool,
}

impl Db {
    pub async fn record_build_input(&self, build_id: i64, input: &NextInput) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO build_inputs (build_id, name, resource_id, version_id, first_occurrence)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (build_id, name) DO UPDATE SET resource_id = excluded.resource_id,
                version_id = excluded.version_id, first_occurrence = excluded.first_occurrence"
        ).bind(build_id).bind(&input.name).bind(input.resource_id).bind(input.version_id).bind(input.first_occurrence)
        .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn record_build_output(
        &self,
        build_id: i64,
        name: &str,
        resource_id: i64,
        version_id: i64,
    ) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO build_outputs (build_id, name, resource_id, version_id) VALUES ($1, $2, $3, $4)
             ON CONFLICT (build_id, name, version_id) DO NOTHING"
        ).bind(build_id).bind(name).bind(resource_id).bind(version_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn build_inputs(&self, build_id: i64) -> DbResult<Vec<BuildVersion>> {
        let rows: Vec<BuildVersionRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT i.name, i.resource_id, r.name AS resource_name, i.version_id, v.version, i.first_occurrence
             FROM build_inputs i JOIN resources r ON r.id = i.resource_id JOIN resource_versions v ON v.id = i.version_id
             WHERE i.build_id = $1 ORDER BY i.name"
        ).bind(build_id).fetch_all(pool).await)?;
        rows.into_iter().map(BuildVersion::try_from).collect()
    }

    pub async fn build_outputs(&self, build_id: i64) -> DbResult<Vec<BuildVersion>> {
        let rows: Vec<BuildVersionRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT o.name, o.resource_id, r.name AS resource_name, o.version_id, v.version, FALSE AS first_occurrence
             FROM build_outputs o JOIN resources r ON r.id = o.resource_id JOIN resource_versions v ON v.id = o.version_id
             WHERE o.build_id = $1 ORDER BY o.name, v.check_order"
        ).bind(build_id).fetch_all(pool).await)?;
        rows.into_iter().map(BuildVersion::try_from).collect()
    }

    /// Builds that used (`as_input`) or produced a version, newest first.
    pub async fn builds_with_version(&self, version_id: i64, as_input: bool) -> DbResult<Vec<Build>> {
        let table = if as_input { "build_inputs" } else { "build_outputs" };
        let rows: Vec<BuildRow> = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {BUILD_COLUMNS} {BUILD_JOINS}
             WHERE b.id IN (SELECT build_id FROM {table} WHERE version_id = $1) ORDER BY b.id DESC"
        ))).bind(version_id).fetch_all(pool).await)?;
        rows.into_iter().map(Build::try_from).collect()
    }

    /// Replaces what the scheduler resolved for a job; `error` says why
    /// inputs could not be resolved (then `inputs` is empty).
    pub async fn save_next_inputs(&self, job_id: i64, inputs: &[NextInput], error: Option<&str>) -> DbResult<()> {
        let has_new = inputs.iter().any(|i| i.first_occurrence);
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM next_build_inputs WHERE job_id = $1").bind(job_id).execute(&mut *tx).await?;
            for input in inputs {
                sqlx::query(
                    "INSERT INTO next_build_inputs (job_id, name, resource_id, version_id, first_occurrence)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (job_id, name) DO UPDATE SET resource_id = excluded.resource_id,
                         version_id = excluded.version_id, first_occurrence = excluded.first_occurrence"
                ).bind(job_id).bind(&input.name).bind(input.resource_id).bind(input.version_id)
                .bind(input.first_occurrence).execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE jobs SET inputs_resolve_error = $1, has_new_inputs = $2 WHERE id = $3")
                .bind(error).bind(has_new).bind(job_id).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// What the scheduler last resolved for a job, and the error if it could not.
    pub async fn next_inputs(&self, job_id: i64) -> DbResult<(Vec<NextInput>, Option<String>)> {
        let inputs: Vec<NextInput> = on_pool!(self, pool => sqlx::query_as(
            "SELECT name, resource_id, version_id, first_occurrence FROM next_build_inputs WHERE job_id = $1 ORDER BY name"
        ).bind(job_id).fetch_all(pool).await)?;
        let error: Option<Option<String>> = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT inputs_resolve_error FROM jobs WHERE id = $1"
        ).bind(job_id).fetch_optional(pool).await)?;
        Ok((inputs, error.flatten()))
    }
}
