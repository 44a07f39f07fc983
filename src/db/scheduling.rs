//! What the scheduler reads: pipelines to schedule, the history its input
//! algorithm works on, and the builds waiting to start.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use sqlx::AssertSqlSafe;

use super::builds::{BUILD_COLUMNS, BUILD_JOINS, BuildRow};
use super::stored::Cell;
use super::{Build, Db, DbResult, Pipeline, on_pool};

/// A version row as the scheduler needs it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HistoryVersion {
    pub resource_id: i64,
    pub id: i64,
    pub check_order: i64,
    pub enabled: bool,
}

/// A version a successful build used or produced.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SucceededWith {
    pub job_id: i64,
    pub build_id: i64,
    pub resource_id: i64,
    pub version_id: i64,
}

impl Db {
    /// Pipelines whose jobs may run: neither paused nor archived.
    pub async fn schedulable_pipelines(&self) -> DbResult<Vec<Pipeline>> {
        Ok(self.all_pipelines().await?.into_iter().filter(|p| !p.paused && !p.archived).collect())
    }

    /// Every version of the pipeline's active resources, in their current histories.
    pub async fn pipeline_versions(&self, pipeline_id: i64) -> DbResult<Vec<HistoryVersion>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT v.resource_id, v.id, v.check_order, v.enabled FROM resource_versions v
             JOIN resources r ON r.id = v.resource_id AND v.config_hash = r.config_hash
             WHERE r.pipeline_id = $1 AND r.active"
        ).bind(pipeline_id).fetch_all(pool).await)?)
    }

    /// The versions every successful job build of the pipeline used or produced.
    pub async fn succeeded_with(&self, pipeline_id: i64) -> DbResult<Vec<SucceededWith>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT b.job_id, b.id AS build_id, i.resource_id, i.version_id FROM builds b
             JOIN build_inputs i ON i.build_id = b.id
             WHERE b.pipeline_id = $1 AND b.job_id IS NOT NULL AND b.status = 'succeeded'
             UNION
             SELECT b.job_id, b.id AS build_id, o.resource_id, o.version_id FROM builds b
             JOIN build_outputs o ON o.build_id = b.id
             WHERE b.pipeline_id = $1 AND b.job_id IS NOT NULL AND b.status = 'succeeded'"
        ).bind(pipeline_id).fetch_all(pool).await)?)
    }

    /// The versions a job's builds used, by input name.
    pub async fn job_input_usage(&self, job_id: i64) -> DbResult<HashMap<String, HashSet<i64>>> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT i.name, i.version_id FROM build_inputs i JOIN builds b ON b.id = i.build_id WHERE b.job_id = $1"
        ).bind(job_id).fetch_all(pool).await)?;
        let mut usage: HashMap<String, HashSet<i64>> = HashMap::new();
        for (name, version) in rows {
            usage.entry(name).or_default().insert(version);
        }
        Ok(usage)
    }

    /// A job's builds waiting to start, oldest first.
    pub async fn pending_builds(&self, job_id: i64) -> DbResult<Vec<Build>> {
        let rows: Vec<BuildRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {BUILD_COLUMNS} {BUILD_JOINS} WHERE b.job_id = $1 AND b.status = 'pending' ORDER BY b.id"
        ))).bind(job_id).fetch_all(pool).await)?;
        rows.into_iter().map(Build::try_from).collect()
    }

    /// Builds of these jobs that are running (started, not finished).
    pub async fn running_builds(&self, job_ids: &[i64]) -> DbResult<i64> {
        if job_ids.is_empty() {
            return Ok(0);
        }
        let placeholders: Vec<String> = (1..=job_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT COUNT(*) FROM builds WHERE status = 'started' AND NOT completed AND job_id IN ({})",
            placeholders.join(", ")
        );
        Ok(on_pool!(self, pool => {
            let mut query = sqlx::query_scalar(AssertSqlSafe(sql.as_str()));
            for id in job_ids {
                query = query.bind(*id);
            }
            query.fetch_one(pool).await
        })?)
    }

    /// A version by its id, whoever owns it.
    pub async fn version_json(&self, version_id: i64) -> DbResult<Option<Value>> {
        let text: Option<String> = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT version FROM resource_versions WHERE id = $1"
        ).bind(version_id).fetch_optional(pool).await)?;
        text.map(|text| Cell::new("resource_versions", version_id, "version").parse(&text)).transpose()
    }
}
