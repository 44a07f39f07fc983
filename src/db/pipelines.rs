//! Pipelines and saving a configuration into pipeline, jobs, resources and
//! resource types in one transaction.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::AssertSqlSafe;

use super::stored::Cell;
use super::{Db, DbError, DbResult, WritePool, now, on_pool, parent_deleted, unique_violation};

/// Names a pipeline within a team: its name plus its instance vars (canonical
/// JSON, empty for a pipeline without instances).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PipelineRef {
    pub name: String,
    pub instance_vars: String,
}

impl PipelineRef {
    pub fn named(name: impl Into<String>) -> PipelineRef {
        PipelineRef { name: name.into(), instance_vars: String::new() }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub id: i64,
    pub team_id: i64,
    pub team_name: String,
    pub name: String,
    /// `None` for a pipeline without instances.
    pub instance_vars: Option<Value>,
    pub ordering: i64,
    pub config_version: i64,
    /// The configuration's `groups` (an array, empty without any).
    pub groups: Value,
    pub display: Option<Value>,
    pub paused: bool,
    pub paused_by: Option<String>,
    pub paused_at: Option<i64>,
    pub public: bool,
    pub archived: bool,
    pub last_updated: i64,
}

#[derive(sqlx::FromRow)]
struct PipelineRow {
    id: i64,
    team_id: i64,
    team_name: String,
    name: String,
    instance_vars: String,
    ordering: i64,
    config_version: i64,
    groups: String,
    display: Option<String>,
    paused: bool,
    paused_by: Option<String>,
    paused_at: Option<i64>,
    public: bool,
    archived: bool,
    last_updated: i64,
}

impl TryFrom<PipelineRow> for Pipeline {
    type Error = DbError;

    fn try_from(row: PipelineRow) -> DbResult<Pipeline> {
        let cell = |column| Cell::new("pipelines", row.id, column);
        Ok(Pipeline {
            instance_vars: cell("instance_vars").parse_unless_empty(&row.instance_vars)?,
            groups: cell("groups").parse(&row.groups)?,
            display: row.display.as_deref().map(|display| cell("display").parse(display)).transpose()?,
            id: row.id,
            team_id: row.team_id,
            team_name: row.team_name,
            name: row.name,
            ordering: row.ordering,
            config_version: row.config_version,
            paused: row.paused,
            paused_by: row.paused_by,
            paused_at: row.paused_at,
            public: row.public,
            archived: row.archived,
            last_updated: row.last_updated,
        })
    }
}

/// A validated configuration, split the way it is stored. Built by the
/// caller from the parsed YAML so this module stays free of its model.
#[derive(Debug, Clone, Default)]
pub struct PipelineSpec {
    /// The whole configuration as the API returns it.
    pub config: Value,
    pub groups: Value,
    pub display: Option<Value>,
    pub jobs: Vec<JobSpec>,
    pub resources: Vec<ResourceSpec>,
    pub resource_types: Vec<ResourceTypeSpec>,
}

#[derive(Debug, Clone, Default)]
pub struct JobSpec {
    pub name: String,
    pub old_name: Option<String>,
    pub config: Value,
    pub public: bool,
    pub disable_manual_trigger: bool,
    /// Names of the groups that list this job.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ResourceSpec {
    pub name: String,
    pub old_name: Option<String>,
    pub type_: String,
    pub config: Value,
    /// Digest of type + source: a new digest starts a new version history.
    pub config_hash: String,
}

#[derive(Debug, Clone, Default)]
pub struct ResourceTypeSpec {
    pub name: String,
    pub type_: String,
    pub config: Value,
    pub config_hash: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SavedPipeline {
    pub pipeline_id: i64,
    pub created: bool,
    pub config_version: i64,
}

const PIPELINE_COLUMNS: &str = "p.id, p.team_id, t.name AS team_name, p.name, p.instance_vars, p.ordering,
    p.config_version, p.groups, p.display, p.paused, p.paused_by, p.paused_at, p.public, p.archived,
    p.last_updated";

impl Db {
    /// Saves `spec` as the configuration of `pipeline` in `team_id`, creating
    /// the pipeline (paused when `initially_paused`) if needed. With
    /// `expected_version`, the save only happens if the stored configuration
    /// is still at that version.
    pub async fn save_pipeline(
        &self,
        team_id: i64,
        pipeline: &PipelineRef,
        spec: &PipelineSpec,
        expected_version: Option<i64>,
        initially_paused: bool,
    ) -> DbResult<SavedPipeline> {
        let (config, nonce) = self.seal(&spec.config.to_string())?;
        let mut sealed_jobs = Vec::with_capacity(spec.jobs.len());
        for job in &spec.jobs {
            sealed_jobs.push(self.seal(&job.config.to_string())?);
        }
        let mut sealed_resources = Vec::with_capacity(spec.resources.len());
        for resource in &spec.resources {
            sealed_resources.push(self.seal(&resource.config.to_string())?);
        }
        let mut sealed_types = Vec::with_capacity(spec.resource_types.len());
        for resource_type in &spec.resource_types {
            sealed_types.push(self.seal(&resource_type.config.to_string())?);
        }
        let groups = spec.groups.to_string();
        let display = spec.display.as_ref().map(Value::to_string);
        let now = now();

        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // The pipeline's row, locked until the save commits: saves of one
            // pipeline take turns, and nobody deletes it under this one.
            let saved = loop {
                let existing: Option<(i64, i64)> = sqlx::query_as(
                    "UPDATE pipelines SET id = id WHERE team_id = $1 AND name = $2 AND instance_vars = $3
                     RETURNING id, config_version"
                ).bind(team_id).bind(&pipeline.name).bind(&pipeline.instance_vars)
                .fetch_optional(&mut *tx).await?;
                if let Some((id, version)) = existing {
                    if let Some(expected) = expected_version
                        && expected != version
                    {
                        return Err(DbError::ConfigVersionConflict { expected });
                    }
                    // Setting an archived pipeline brings it back (still paused).
                    sqlx::query(
                        "UPDATE pipelines SET config = $1, nonce = $2, config_version = config_version + 1,
                            groups = $3, display = $4, archived = FALSE, last_updated = $5
                         WHERE id = $6"
                    ).bind(&config).bind(&nonce).bind(&groups).bind(&display).bind(now)
                    .bind(id).execute(&mut *tx).await?;
                    break SavedPipeline { pipeline_id: id, created: false, config_version: version + 1 };
                }
                // A new instance joins its group's place, last within it; a
                // new name goes last in the team.
                let created: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO pipelines (team_id, name, instance_vars, ordering, secondary_ordering,
                        config, nonce, config_version, groups, display, paused, paused_at, last_updated)
                     VALUES ($1, $2, $3,
                        COALESCE((SELECT MAX(ordering) FROM pipelines WHERE team_id = $1 AND name = $2),
                            (SELECT COALESCE(MAX(ordering), 0) + 1 FROM pipelines WHERE team_id = $1)),
                        (SELECT COALESCE(MAX(secondary_ordering), 0) + 1 FROM pipelines
                         WHERE team_id = $1 AND name = $2),
                        $4, $5, 1, $6, $7, $8, $9, $9)
                     ON CONFLICT (team_id, name, instance_vars) DO NOTHING
                     RETURNING id"
                ).bind(team_id).bind(&pipeline.name).bind(&pipeline.instance_vars)
                .bind(&config).bind(&nonce).bind(&groups).bind(&display)
                .bind(initially_paused).bind(now)
                .fetch_optional(&mut *tx).await.map_err(parent_deleted("team"))?;
                if let Some(id) = created {
                    break SavedPipeline { pipeline_id: id, created: true, config_version: 1 };
                }
                // Another node created it since this one looked: save over it.
            };
            let pipeline_id = saved.pipeline_id;

            // Renames first, so a renamed job or resource keeps its builds and versions.
            for job in &spec.jobs {
                if let Some(old) = job.old_name.as_deref().filter(|old| *old != job.name) {
                    sqlx::query(
                        "UPDATE jobs SET name = $1 WHERE pipeline_id = $2 AND name = $3
                         AND NOT EXISTS (SELECT 1 FROM jobs WHERE pipeline_id = $2 AND name = $1)"
                    ).bind(&job.name).bind(pipeline_id).bind(old).execute(&mut *tx).await?;
                }
            }
            for resource in &spec.resources {
                if let Some(old) = resource.old_name.as_deref().filter(|old| *old != resource.name) {
                    sqlx::query(
                        "UPDATE resources SET name = $1 WHERE pipeline_id = $2 AND name = $3
                         AND NOT EXISTS (SELECT 1 FROM resources WHERE pipeline_id = $2 AND name = $1)"
                    ).bind(&resource.name).bind(pipeline_id).bind(old).execute(&mut *tx).await?;
                }
            }

            // Objects left out of the new configuration stay for their history, inactive.
            for table in ["jobs", "resources", "resource_types"] {
                sqlx::query(AssertSqlSafe(format!("UPDATE {table} SET active = FALSE WHERE pipeline_id = $1")))
                    .bind(pipeline_id).execute(&mut *tx).await?;
            }

            for (job, (config, nonce)) in spec.jobs.iter().zip(&sealed_jobs) {
                let groups = serde_json::to_string(&job.groups).expect("strings serialize");
                sqlx::query(
                    "INSERT INTO jobs (pipeline_id, name, config, nonce, active, public, disable_manual_trigger, groups)
                     VALUES ($1, $2, $3, $4, TRUE, $5, $6, $7)
                     ON CONFLICT (pipeline_id, name) DO UPDATE SET config = excluded.config,
                        nonce = excluded.nonce, active = TRUE, public = excluded.public,
                        disable_manual_trigger = excluded.disable_manual_trigger, groups = excluded.groups"
                ).bind(pipeline_id).bind(&job.name).bind(config).bind(nonce).bind(job.public)
                .bind(job.disable_manual_trigger).bind(groups).execute(&mut *tx).await?;
            }
            for (resource, (config, nonce)) in spec.resources.iter().zip(&sealed_resources) {
                sqlx::query(
                    "INSERT INTO resources (pipeline_id, name, type, config, nonce, active, config_hash)
                     VALUES ($1, $2, $3, $4, $5, TRUE, $6)
                     ON CONFLICT (pipeline_id, name) DO UPDATE SET type = excluded.type,
                        config = excluded.config, nonce = excluded.nonce, active = TRUE,
                        config_hash = excluded.config_hash"
                ).bind(pipeline_id).bind(&resource.name).bind(&resource.type_).bind(config).bind(nonce)
                .bind(&resource.config_hash).execute(&mut *tx).await?;
            }
            for (resource_type, (config, nonce)) in spec.resource_types.iter().zip(&sealed_types) {
                sqlx::query(
                    "INSERT INTO resource_types (pipeline_id, name, type, config, nonce, active, config_hash)
                     VALUES ($1, $2, $3, $4, $5, TRUE, $6)
                     ON CONFLICT (pipeline_id, name) DO UPDATE SET type = excluded.type,
                        config = excluded.config, nonce = excluded.nonce, active = TRUE,
                        config_hash = excluded.config_hash"
                ).bind(pipeline_id).bind(&resource_type.name).bind(&resource_type.type_).bind(config)
                .bind(nonce).bind(&resource_type.config_hash).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(saved)
        })
    }

    /// The stored configuration of a pipeline and its version.
    pub async fn pipeline_config(&self, pipeline_id: i64) -> DbResult<Option<(Value, i64)>> {
        let row: Option<(String, Option<String>, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT config, nonce, config_version FROM pipelines WHERE id = $1"
        ).bind(pipeline_id).fetch_optional(pool).await)?;
        let Some((config, nonce, version)) = row else { return Ok(None) };
        let config = Cell::new("pipelines", pipeline_id, "config").parse(&self.open(config, nonce)?)?;
        Ok(Some((config, version)))
    }

    pub async fn find_pipeline(&self, team_name: &str, pipeline: &PipelineRef) -> DbResult<Option<Pipeline>> {
        let row: Option<PipelineRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {PIPELINE_COLUMNS} FROM pipelines p JOIN teams t ON t.id = p.team_id
             WHERE t.name = $1 AND p.name = $2 AND p.instance_vars = $3"
        ))).bind(team_name).bind(&pipeline.name).bind(&pipeline.instance_vars)
        .fetch_optional(pool).await)?;
        row.map(Pipeline::try_from).transpose()
    }

    pub async fn find_pipeline_by_id(&self, id: i64) -> DbResult<Option<Pipeline>> {
        let row: Option<PipelineRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {PIPELINE_COLUMNS} FROM pipelines p JOIN teams t ON t.id = p.team_id WHERE p.id = $1"
        ))).bind(id).fetch_optional(pool).await)?;
        row.map(Pipeline::try_from).transpose()
    }

    /// A team's pipelines in their display order: by group, then within it.
    pub async fn team_pipelines(&self, team_name: &str) -> DbResult<Vec<Pipeline>> {
        let rows: Vec<PipelineRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {PIPELINE_COLUMNS} FROM pipelines p JOIN teams t ON t.id = p.team_id
             WHERE t.name = $1 ORDER BY p.ordering, p.secondary_ordering, p.id"
        ))).bind(team_name).fetch_all(pool).await)?;
        rows.into_iter().map(Pipeline::try_from).collect()
    }

    /// Every pipeline, ordered by team then display order.
    pub async fn all_pipelines(&self) -> DbResult<Vec<Pipeline>> {
        let rows: Vec<PipelineRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {PIPELINE_COLUMNS} FROM pipelines p JOIN teams t ON t.id = p.team_id
             ORDER BY t.name, p.ordering, p.secondary_ordering, p.id"
        ))).fetch_all(pool).await)?;
        rows.into_iter().map(Pipeline::try_from).collect()
    }

    pub async fn delete_pipeline(&self, pipeline_id: i64) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM pipelines WHERE id = $1")
            .bind(pipeline_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn pause_pipeline(&self, pipeline_id: i64, paused_by: &str) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE pipelines SET paused = TRUE, paused_by = $1, paused_at = $2 WHERE id = $3"
        ).bind(paused_by).bind(now()).bind(pipeline_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn unpause_pipeline(&self, pipeline_id: i64) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE pipelines SET paused = FALSE, paused_by = NULL, paused_at = NULL WHERE id = $1"
        ).bind(pipeline_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn set_pipeline_public(&self, pipeline_id: i64, public: bool) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query("UPDATE pipelines SET public = $1 WHERE id = $2")
            .bind(public).bind(pipeline_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Renames every instance of a team's pipeline group `old_name` (a
    /// pipeline without instance vars is a group of one), as `fly
    /// rename-pipeline` does. A name the team already uses is refused rather
    /// than merging two groups. Returns how many pipelines were renamed.
    pub async fn rename_pipeline_group(&self, team_id: i64, old_name: &str, new_name: &str) -> DbResult<u64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            if old_name != new_name {
                let (in_use,): (i64,) = sqlx::query_as("SELECT count(*) FROM pipelines WHERE team_id = $1 AND name = $2")
                    .bind(team_id).bind(new_name).fetch_one(&mut *tx).await?;
                if in_use > 0 {
                    return Err(DbError::AlreadyExists(format!("pipeline '{new_name}'")));
                }
            }
            let renamed = sqlx::query("UPDATE pipelines SET name = $1, last_updated = $2 WHERE team_id = $3 AND name = $4")
                .bind(new_name).bind(now()).bind(team_id).bind(old_name)
                .execute(&mut *tx).await.map_err(unique_violation(format!("pipeline '{new_name}'")))?
                .rows_affected();
            tx.commit().await?;
            Ok(renamed)
        })
    }

    /// Archives a pipeline: paused, its configuration cleared, its history kept.
    pub async fn archive_pipeline(&self, pipeline_id: i64, archived_by: &str) -> DbResult<()> {
        let (empty, nonce) = self.seal("{}")?;
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE pipelines SET archived = TRUE, paused = TRUE, paused_by = $1, paused_at = $2,
                    last_updated = $2, config = $3, nonce = $4, config_version = config_version + 1
                 WHERE id = $5"
            ).bind(archived_by).bind(now()).bind(&empty).bind(&nonce).bind(pipeline_id)
            .execute(&mut *tx).await?;
            for table in ["jobs", "resources", "resource_types"] {
                sqlx::query(AssertSqlSafe(format!("UPDATE {table} SET active = FALSE WHERE pipeline_id = $1")))
                    .bind(pipeline_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Puts the named pipelines of a team first, in the given order, the
    /// others after them as they were. All instances of a name move as one
    /// group. Returns the names that matched no pipeline; nothing changes if
    /// any did not.
    pub async fn order_pipelines(&self, team_id: i64, names: &[String]) -> DbResult<Vec<String>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // Orderings of one team take turns (the team's row is their lock
            // on PostgreSQL), so each reads the order the last one wrote.
            let team = sqlx::query("UPDATE teams SET id = id WHERE id = $1")
                .bind(team_id).execute(&mut *tx).await?.rows_affected();
            if team == 0 {
                return Err(DbError::NotFound("team".into()));
            }
            let current: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, name FROM pipelines WHERE team_id = $1 ORDER BY ordering, secondary_ordering, id"
            ).bind(team_id).fetch_all(&mut *tx).await?;
            let unknown = unknown(names, &current);
            if !unknown.is_empty() {
                return Ok(unknown);
            }
            // One place per group, numbered from 0.
            let mut places: HashMap<&str, i64> = HashMap::new();
            for name in names.iter().chain(current.iter().map(|(_, name)| name)) {
                let next = places.len() as i64;
                places.entry(name).or_insert(next);
            }
            let mut positions: Vec<(i64, i64)> = current.iter().map(|(id, name)| (*id, places[name.as_str()])).collect();
            // In id order: writers of the same rows in one fixed order cannot deadlock.
            positions.sort_unstable();
            for (id, position) in positions {
                sqlx::query("UPDATE pipelines SET ordering = $1 WHERE id = $2")
                    .bind(position).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(Vec::new())
        })
    }

    /// Puts the listed instances of pipeline `name` (canonical instance
    /// vars, empty for the one without) first within their group, in the
    /// given order, the others after them as they were. Returns the
    /// instances that matched no pipeline; nothing changes if any did not.
    pub async fn order_pipelines_within_group(
        &self,
        team_id: i64,
        name: &str,
        instances: &[String],
    ) -> DbResult<Vec<String>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // Takes turns with the team's other orderings, as above.
            let team = sqlx::query("UPDATE teams SET id = id WHERE id = $1")
                .bind(team_id).execute(&mut *tx).await?.rows_affected();
            if team == 0 {
                return Err(DbError::NotFound("team".into()));
            }
            let current: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, instance_vars FROM pipelines WHERE team_id = $1 AND name = $2
                 ORDER BY secondary_ordering, id"
            ).bind(team_id).bind(name).fetch_all(&mut *tx).await?;
            let unknown = unknown(instances, &current);
            if !unknown.is_empty() {
                return Ok(unknown);
            }
            let mut order: Vec<&(i64, String)> = current.iter().collect();
            // Stable: the unlisted keep their order, after the listed.
            order.sort_by_key(|(_, vars)| instances.iter().position(|v| v == vars).unwrap_or(usize::MAX));
            // Numbered from 1, as a new instance's place is counted.
            let mut positions: Vec<(i64, i64)> =
                order.into_iter().enumerate().map(|(position, (id, _))| (*id, position as i64 + 1)).collect();
            positions.sort_unstable();
            for (id, position) in positions {
                sqlx::query("UPDATE pipelines SET secondary_ordering = $1 WHERE id = $2")
                    .bind(position).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(Vec::new())
        })
    }
}

/// The wanted keys that none of `current`'s (id, key) rows has.
fn unknown(wanted: &[String], current: &[(i64, String)]) -> Vec<String> {
    wanted.iter().filter(|key| !current.iter().any(|(_, k)| k == *key)).cloned().collect()
}
