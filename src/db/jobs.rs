//! Jobs of a pipeline.

use serde_json::Value;
use sqlx::AssertSqlSafe;

use super::stored::Cell;
use super::{Db, DbError, DbResult, now, on_pool};

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub pipeline_id: i64,
    pub name: String,
    /// The job's configuration as stored, which compiling a build walks.
    pub config: Value,
    /// The same configuration, typed.
    pub definition: crate::config::Job,
    pub active: bool,
    pub public: bool,
    pub disable_manual_trigger: bool,
    pub groups: Vec<String>,
    pub paused: bool,
    pub paused_by: Option<String>,
    pub paused_at: Option<i64>,
    pub first_logged_build_id: i64,
    pub has_new_inputs: bool,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    pipeline_id: i64,
    name: String,
    config: String,
    nonce: Option<String>,
    active: bool,
    public: bool,
    disable_manual_trigger: bool,
    groups: String,
    paused: bool,
    paused_by: Option<String>,
    paused_at: Option<i64>,
    first_logged_build_id: i64,
    has_new_inputs: bool,
}

const JOB_COLUMNS: &str = "j.id, j.pipeline_id, j.name, j.config, j.nonce, j.active, j.public,
    j.disable_manual_trigger, j.groups, j.paused, j.paused_by, j.paused_at, j.first_logged_build_id,
    j.has_new_inputs";

impl Db {
    fn job_from_row(&self, row: JobRow) -> DbResult<Job> {
        let cell = Cell::new("jobs", row.id, "config");
        let config: Value = cell.parse(&self.open(row.config, row.nonce)?)?;
        Ok(Job {
            definition: cell.parse_value(&config)?,
            config,
            groups: Cell::new("jobs", row.id, "groups").parse(&row.groups)?,
            id: row.id,
            pipeline_id: row.pipeline_id,
            name: row.name,
            active: row.active,
            public: row.public,
            disable_manual_trigger: row.disable_manual_trigger,
            paused: row.paused,
            paused_by: row.paused_by,
            paused_at: row.paused_at,
            first_logged_build_id: row.first_logged_build_id,
            has_new_inputs: row.has_new_inputs,
        })
    }

    /// The active jobs of a pipeline, in configuration order.
    pub async fn pipeline_jobs(&self, pipeline_id: i64) -> DbResult<Vec<Job>> {
        let rows: Vec<JobRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs j WHERE j.pipeline_id = $1 AND j.active ORDER BY j.id"
        ))).bind(pipeline_id).fetch_all(pool).await)?;
        rows.into_iter().map(|row| self.job_from_row(row)).collect()
    }

    pub async fn find_job(&self, pipeline_id: i64, name: &str) -> DbResult<Option<Job>> {
        let row: Option<JobRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs j WHERE j.pipeline_id = $1 AND j.name = $2 AND j.active"
        ))).bind(pipeline_id).bind(name).fetch_optional(pool).await)?;
        row.map(|row| self.job_from_row(row)).transpose()
    }

    pub async fn pause_job(&self, job_id: i64, paused_by: &str) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE jobs SET paused = TRUE, paused_by = $1, paused_at = $2 WHERE id = $3"
        ).bind(paused_by).bind(now()).bind(job_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn unpause_job(&self, job_id: i64) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE jobs SET paused = FALSE, paused_by = NULL, paused_at = NULL WHERE id = $1"
        ).bind(job_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl Db {
    /// Takes the next build number of a job.
    pub async fn next_build_number(&self, job_id: i64) -> DbResult<i64> {
        let number: Option<i64> = on_pool!(self, pool => sqlx::query_scalar(
            "UPDATE jobs SET build_number_seq = build_number_seq + 1 WHERE id = $1 RETURNING build_number_seq"
        ).bind(job_id).fetch_optional(pool).await)?;
        number.ok_or_else(|| DbError::NotFound("job".into()))
    }

    /// Asks the scheduler to look at a job again soon.
    pub async fn request_schedule(&self, job_id: i64) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query("UPDATE jobs SET schedule_requested = $1 WHERE id = $2")
            .bind(now()).bind(job_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
