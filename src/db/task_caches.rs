//! The caches of jobs' task steps: one row per job, step and cache path,
//! whose id names the cache in the runtime. Clearing a cache deletes its
//! row, so the step's next run starts a new, empty one wherever it runs;
//! the cleared keys are kept a while for every node to delete the files.

use serde_json::Value;

use super::stored::Cell;
use super::{Db, DbError, DbResult, WritePool, now, on_pool};

/// The runtime's key of the cache with this id.
pub fn task_cache_key(id: i64) -> String {
    format!("task-cache-{id}")
}

/// A task cache as `fly volumes` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskCache {
    pub id: i64,
    pub pipeline_id: i64,
    pub pipeline_name: String,
    pub pipeline_instance_vars: Option<Value>,
    pub job_name: String,
    pub step_name: String,
    pub path: String,
}

#[derive(sqlx::FromRow)]
struct TaskCacheRow {
    id: i64,
    pipeline_id: i64,
    pipeline_name: String,
    pipeline_instance_vars: String,
    job_name: String,
    step_name: String,
    path: String,
}

impl TryFrom<TaskCacheRow> for TaskCache {
    type Error = DbError;

    fn try_from(row: TaskCacheRow) -> DbResult<TaskCache> {
        Ok(TaskCache {
            pipeline_instance_vars: Cell::new("pipelines", row.pipeline_id, "instance_vars")
                .parse_unless_empty(&row.pipeline_instance_vars)?,
            id: row.id,
            pipeline_id: row.pipeline_id,
            pipeline_name: row.pipeline_name,
            job_name: row.job_name,
            step_name: row.step_name,
            path: row.path,
        })
    }
}

impl Db {
    /// The id of the cache `path` of the job's step `step_name`, made on first use.
    pub async fn task_cache_id(&self, job_id: i64, step_name: &str, path: &str) -> DbResult<i64> {
        Ok(on_pool!(self, pool => sqlx::query_scalar(
            "INSERT INTO task_caches (job_id, step_name, path) VALUES ($1, $2, $3)
             ON CONFLICT (job_id, step_name, path) DO UPDATE SET path = excluded.path RETURNING id"
        ).bind(job_id).bind(step_name).bind(path).fetch_one(pool).await)?)
    }

    /// Clears the caches of a job's step (only the one at `path`, if
    /// given); returns how many there were.
    pub async fn clear_task_caches(&self, job_id: i64, step_name: &str, path: Option<&str>) -> DbResult<u64> {
        let cleared_at = now();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let ids: Vec<i64> = sqlx::query_scalar(
                "DELETE FROM task_caches WHERE job_id = $1 AND step_name = $2 AND ($3 IS NULL OR path = $3)
                 RETURNING id"
            ).bind(job_id).bind(step_name).bind(path).fetch_all(&mut *tx).await?;
            for id in &ids {
                sqlx::query(
                    "INSERT INTO cleared_task_caches (cache_key, cleared_at) VALUES ($1, $2)
                     ON CONFLICT (cache_key) DO NOTHING"
                ).bind(task_cache_key(*id)).bind(cleared_at).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(ids.len() as u64)
        })
    }

    /// Keys of caches cleared at or after `since`.
    pub async fn cleared_task_cache_keys(&self, since: i64) -> DbResult<Vec<String>> {
        Ok(on_pool!(self, pool => sqlx::query_scalar(
            "SELECT cache_key FROM cleared_task_caches WHERE cleared_at >= $1 ORDER BY cache_key"
        ).bind(since).fetch_all(pool).await)?)
    }

    /// Forgets caches cleared before `before`: every node had its chance.
    pub async fn forget_cleared_task_caches(&self, before: i64) -> DbResult<u64> {
        Ok(on_pool!(self, pool => sqlx::query("DELETE FROM cleared_task_caches WHERE cleared_at < $1")
            .bind(before).execute(pool).await.map(|r| r.rows_affected()))?)
    }

    /// The task caches of a team's active jobs.
    pub async fn team_task_caches(&self, team_id: i64) -> DbResult<Vec<TaskCache>> {
        let rows: Vec<TaskCacheRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT c.id, p.id AS pipeline_id, p.name AS pipeline_name, p.instance_vars AS pipeline_instance_vars,
                j.name AS job_name, c.step_name, c.path
             FROM task_caches c JOIN jobs j ON j.id = c.job_id JOIN pipelines p ON p.id = j.pipeline_id
             WHERE p.team_id = $1 AND j.active ORDER BY c.id"
        ).bind(team_id).fetch_all(pool).await)?;
        rows.into_iter().map(TaskCache::try_from).collect()
    }
}
