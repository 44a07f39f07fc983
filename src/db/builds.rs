//! Builds as the API lists them, with Concourse's id-based pagination.

use serde_json::Value;
use sqlx::AssertSqlSafe;

use super::stored::Cell;
use super::{Db, DbError, DbResult, WritePool, now, on_pool, parent_deleted};
use crate::engine::plan::Plan;
use crate::telemetry::spans::DbOperation;

/// Where a build is in its life: waiting for the scheduler, running, or
/// ended one of four ways. Stored and shown by its Concourse name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuildStatus {
    Pending,
    Started,
    Succeeded,
    Failed,
    Errored,
    Aborted,
}

impl BuildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Pending => "pending",
            BuildStatus::Started => "started",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed => "failed",
            BuildStatus::Errored => "errored",
            BuildStatus::Aborted => "aborted",
        }
    }

    /// Whether a build ends with it.
    pub fn is_final(self) -> bool {
        !matches!(self, BuildStatus::Pending | BuildStatus::Started)
    }
}

impl std::fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored status that is none of [`BuildStatus`]'s.
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a build status")]
pub struct UnknownStatus(String);

impl TryFrom<String> for BuildStatus {
    type Error = UnknownStatus;

    fn try_from(text: String) -> Result<BuildStatus, UnknownStatus> {
        Ok(match text.as_str() {
            "pending" => BuildStatus::Pending,
            "started" => BuildStatus::Started,
            "succeeded" => BuildStatus::Succeeded,
            "failed" => BuildStatus::Failed,
            "errored" => BuildStatus::Errored,
            "aborted" => BuildStatus::Aborted,
            _ => return Err(UnknownStatus(text)),
        })
    }
}

/// A build as the API presents it.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    pub id: i64,
    pub name: String,
    pub status: BuildStatus,
    pub team_id: i64,
    pub team_name: String,
    pub pipeline_id: Option<i64>,
    pub pipeline_name: Option<String>,
    /// `None` without a pipeline or for a pipeline without instances.
    pub pipeline_instance_vars: Option<Value>,
    pub job_id: Option<i64>,
    pub job_name: Option<String>,
    pub resource_name: Option<String>,
    pub resource_type_name: Option<String>,
    pub create_time: i64,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub reap_time: Option<i64>,
    pub rerun_of: Option<i64>,
    pub rerun_of_name: Option<String>,
    pub rerun_number: i64,
    pub comment: String,
    pub created_by: Option<String>,
    pub completed: bool,
    pub aborted: bool,
    /// `fly trigger-job` (or the UI) created it, not the scheduler.
    pub manually_triggered: bool,
}

#[derive(sqlx::FromRow)]
pub(super) struct BuildRow {
    id: i64,
    name: String,
    #[sqlx(try_from = "String")]
    status: BuildStatus,
    team_id: i64,
    team_name: String,
    pipeline_id: Option<i64>,
    pipeline_name: Option<String>,
    pipeline_instance_vars: Option<String>,
    job_id: Option<i64>,
    job_name: Option<String>,
    resource_name: Option<String>,
    resource_type_name: Option<String>,
    create_time: i64,
    start_time: Option<i64>,
    end_time: Option<i64>,
    reap_time: Option<i64>,
    rerun_of: Option<i64>,
    rerun_of_name: Option<String>,
    rerun_number: i64,
    comment: String,
    created_by: Option<String>,
    completed: bool,
    aborted: bool,
    manually_triggered: bool,
}

impl TryFrom<BuildRow> for Build {
    type Error = DbError;

    fn try_from(row: BuildRow) -> DbResult<Build> {
        let pipeline_instance_vars = match (row.pipeline_id, &row.pipeline_instance_vars) {
            (Some(pipeline_id), Some(vars)) => {
                Cell::new("pipelines", pipeline_id, "instance_vars").parse_unless_empty(vars)?
            }
            _ => None,
        };
        Ok(Build {
            pipeline_instance_vars,
            id: row.id,
            name: row.name,
            status: row.status,
            team_id: row.team_id,
            team_name: row.team_name,
            pipeline_id: row.pipeline_id,
            pipeline_name: row.pipeline_name,
            job_id: row.job_id,
            job_name: row.job_name,
            resource_name: row.resource_name,
            resource_type_name: row.resource_type_name,
            create_time: row.create_time,
            start_time: row.start_time,
            end_time: row.end_time,
            reap_time: row.reap_time,
            rerun_of: row.rerun_of,
            rerun_of_name: row.rerun_of_name,
            rerun_number: row.rerun_number,
            comment: row.comment,
            created_by: row.created_by,
            completed: row.completed,
            aborted: row.aborted,
            manually_triggered: row.manually_triggered,
        })
    }
}

/// A window of builds by id: `from` and `to` are inclusive bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: i64,
}

/// One page of builds, newest first, with the pages before and after it.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildPage {
    pub builds: Vec<Build>,
    pub newer: Option<Page>,
    pub older: Option<Page>,
}

/// Which builds a listing covers.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildFilter {
    All,
    /// Builds of these teams, plus those of public jobs of public pipelines.
    VisibleTo(Vec<String>),
    Team(i64),
    Pipeline(i64),
    Job(i64),
}

pub(super) const BUILD_COLUMNS: &str = "b.id, b.name, b.status, b.team_id, t.name AS team_name, b.pipeline_id,
    p.name AS pipeline_name, p.instance_vars AS pipeline_instance_vars, b.job_id, j.name AS job_name,
    r.name AS resource_name, rt.name AS resource_type_name, b.create_time, b.start_time, b.end_time,
    b.reap_time, b.rerun_of, rb.name AS rerun_of_name, b.rerun_number, b.comment, b.created_by, b.completed,
    b.aborted, b.manually_triggered";

pub(super) const BUILD_JOINS: &str = "FROM builds b
    JOIN teams t ON t.id = b.team_id
    LEFT JOIN pipelines p ON p.id = b.pipeline_id
    LEFT JOIN jobs j ON j.id = b.job_id
    LEFT JOIN resources r ON r.id = b.resource_id
    LEFT JOIN resource_types rt ON rt.id = b.resource_type_id
    LEFT JOIN builds rb ON rb.id = b.rerun_of";

/// A new build row. Without a plan it is `pending` until the scheduler
/// starts it; with one it is `started` at once (one-off and check builds).
#[derive(Debug, Clone, Default)]
pub struct NewBuild {
    pub team_id: i64,
    pub pipeline_id: Option<i64>,
    pub job_id: Option<i64>,
    pub resource_id: Option<i64>,
    pub resource_type_id: Option<i64>,
    pub name: String,
    pub manually_triggered: bool,
    pub created_by: Option<String>,
    pub plan: Option<BuildPlan>,
    pub span_context: Option<String>,
}

impl NewBuild {
    /// What the build belongs to most closely: gone whenever anything above it is.
    fn owner(&self) -> &'static str {
        if self.job_id.is_some() {
            "job"
        } else if self.resource_id.is_some() {
            "resource"
        } else if self.resource_type_id.is_some() {
            "resource type"
        } else if self.pipeline_id.is_some() {
            "pipeline"
        } else {
            "team"
        }
    }
}

/// A plan as stored: the private one (encrypted at rest) and its public view.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildPlan {
    pub private: Plan,
    pub public: Value,
}

impl BuildPlan {
    pub fn new(plan: Plan) -> BuildPlan {
        BuildPlan { public: plan.public(), private: plan }
    }

    /// The private plan's text, sealed when a key is set, and the public view's text.
    fn to_stored(&self, db: &Db) -> DbResult<(String, Option<String>, String)> {
        let private = serde_json::to_string(&self.private)
            .map_err(|e| DbError::Invalid(format!("the plan does not serialize: {e}")))?;
        let (sealed, nonce) = db.seal(&private)?;
        Ok((sealed, nonce, self.public.to_string()))
    }
}

impl BuildFilter {
    /// The WHERE clause of this filter; its binds start at `$1`.
    fn condition(&self) -> (String, Vec<FilterBind>) {
        match self {
            BuildFilter::All => ("TRUE".into(), vec![]),
            BuildFilter::Team(id) => ("b.team_id = $1".into(), vec![FilterBind::Id(*id)]),
            BuildFilter::Pipeline(id) => ("b.pipeline_id = $1".into(), vec![FilterBind::Id(*id)]),
            BuildFilter::Job(id) => ("b.job_id = $1".into(), vec![FilterBind::Id(*id)]),
            BuildFilter::VisibleTo(teams) => {
                let placeholders: Vec<String> = (1..=teams.len()).map(|i| format!("${i}")).collect();
                let mine = if teams.is_empty() {
                    "FALSE".to_string()
                } else {
                    format!("t.name IN ({})", placeholders.join(", "))
                };
                (format!("({mine} OR (p.public AND j.public))"), teams.iter().cloned().map(FilterBind::Name).collect())
            }
        }
    }
}

enum FilterBind {
    Id(i64),
    Name(String),
}

impl Db {
    pub async fn create_build(&self, build: &NewBuild) -> DbResult<i64> {
        let span = self.operation_span(DbOperation::CreateBuild);
        let created = self.insert_build(build).await;
        span.end(&created);
        created
    }

    async fn insert_build(&self, build: &NewBuild) -> DbResult<i64> {
        let (plan, nonce, public_plan) = match &build.plan {
            Some(plan) => {
                let (sealed, nonce, public) = plan.to_stored(self)?;
                (Some(sealed), nonce, Some(public))
            }
            None => (None, None, None),
        };
        let status = if plan.is_some() { "started" } else { "pending" };
        on_pool!(self, pool => sqlx::query_scalar(
            "INSERT INTO builds (name, status, team_id, pipeline_id, job_id, resource_id, resource_type_id,
                create_time, manually_triggered, created_by, plan, nonce, public_plan, span_context)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id"
        ).bind(&build.name).bind(status).bind(build.team_id).bind(build.pipeline_id).bind(build.job_id)
        .bind(build.resource_id).bind(build.resource_type_id).bind(now()).bind(build.manually_triggered)
        .bind(&build.created_by).bind(&plan).bind(&nonce).bind(&public_plan).bind(&build.span_context)
        .fetch_one(pool).await)
        .map_err(parent_deleted(build.owner()))
    }

    /// A one-off build (`fly execute`): started at once, named by its id.
    pub async fn create_one_off_build(&self, mut build: NewBuild) -> DbResult<i64> {
        build.name = String::new();
        let id = self.create_build(&build).await?;
        on_pool!(self, pool => sqlx::query("UPDATE builds SET name = $1 WHERE id = $2")
            .bind(id.to_string()).bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(id)
    }

    /// Gives a pending build its plan and marks it `started`; false when it
    /// was no longer pending (aborted meanwhile).
    pub async fn start_build(&self, id: i64, plan: &BuildPlan) -> DbResult<bool> {
        let (sealed, nonce, public) = plan.to_stored(self)?;
        let updated = on_pool!(self, pool => sqlx::query(
            "UPDATE builds SET status = 'started', plan = $1, nonce = $2, public_plan = $3
             WHERE id = $4 AND status = 'pending'"
        ).bind(&sealed).bind(&nonce).bind(&public).bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(updated > 0)
    }

    /// Records that the engine began running the build under `lease`
    /// (events follow); false when it had ended meanwhile (aborted before
    /// it started) or the lease moved on.
    pub async fn mark_build_running(&self, lease: &super::BuildLease) -> DbResult<bool> {
        let updated = on_pool!(self, pool => sqlx::query(
            "UPDATE builds SET start_time = $1
             WHERE id = $2 AND start_time IS NULL AND NOT completed AND lease_owner = $3 AND lease_epoch = $4"
        ).bind(now()).bind(lease.build_id).bind(&lease.owner).bind(lease.epoch)
        .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(updated > 0)
    }

    /// Asks for a build to stop: the node running it sees the flag (and
    /// the abort notification). A build that never ran is ended by the
    /// caller ([`Db::end_unstarted_build`]).
    pub async fn request_abort(&self, id: i64) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query("UPDATE builds SET aborted = TRUE WHERE id = $1")
            .bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn is_abort_requested(&self, id: i64) -> DbResult<bool> {
        Ok(on_pool!(self, pool => sqlx::query_scalar("SELECT aborted FROM builds WHERE id = $1")
            .bind(id).fetch_optional(pool).await)?
        .unwrap_or(false))
    }

    /// Started builds that are not finished: what the build tracker runs.
    pub async fn started_builds(&self) -> DbResult<Vec<i64>> {
        Ok(on_pool!(self, pool => sqlx::query_scalar(
            "SELECT id FROM builds WHERE status = 'started' AND NOT completed ORDER BY id"
        ).fetch_all(pool).await)?)
    }

    /// The private plan of a build, decrypted.
    pub async fn build_plan(&self, id: i64) -> DbResult<Option<Plan>> {
        let row: Option<(Option<String>, Option<String>)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT plan, nonce FROM builds WHERE id = $1"
        ).bind(id).fetch_optional(pool).await)?;
        match row {
            Some((Some(plan), nonce)) => Cell::new("builds", id, "plan").parse(&self.open(plan, nonce)?).map(Some),
            _ => Ok(None),
        }
    }

    pub async fn public_build_plan(&self, id: i64) -> DbResult<Option<Value>> {
        let text: Option<String> = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT public_plan FROM builds WHERE id = $1"
        ).bind(id).fetch_optional(pool).await)?
        .flatten();
        text.map(|text| Cell::new("builds", id, "public_plan").parse(&text)).transpose()
    }

    pub async fn set_build_comment(&self, id: i64, comment: &str) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query("UPDATE builds SET comment = $1 WHERE id = $2")
            .bind(comment).bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn build_span_context(&self, id: i64) -> DbResult<Option<String>> {
        Ok(on_pool!(self, pool => sqlx::query_scalar("SELECT span_context FROM builds WHERE id = $1")
            .bind(id).fetch_optional(pool).await)?
        .flatten())
    }

    /// The span the build runs in, stored once it started, so its trace
    /// outlives this process.
    pub async fn set_build_span_context(&self, id: i64, span_context: &str) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query("UPDATE builds SET span_context = $1 WHERE id = $2")
            .bind(span_context).bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The spans that produced the versions a build is the first to use
    /// (the checks or puts behind its trigger).
    pub async fn new_input_span_contexts(&self, build_id: i64) -> DbResult<Vec<String>> {
        Ok(on_pool!(self, pool => sqlx::query_scalar(
            "SELECT v.span_context FROM build_inputs bi JOIN resource_versions v ON v.id = bi.version_id
             WHERE bi.build_id = $1 AND bi.first_occurrence AND v.span_context IS NOT NULL ORDER BY bi.name"
        ).bind(build_id).fetch_all(pool).await)?)
    }

    /// A job's build by name (`3`, or `3.1` for a rerun).
    pub async fn find_job_build(&self, job_id: i64, name: &str) -> DbResult<Option<Build>> {
        let row: Option<BuildRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {BUILD_COLUMNS} {BUILD_JOINS} WHERE b.job_id = $1 AND b.name = $2"
        ))).bind(job_id).bind(name).fetch_optional(pool).await)?;
        row.map(Build::try_from).transpose()
    }

    /// The builds a job's summary shows: the next one (pending or running),
    /// the last finished one, and the first of the current run of results
    /// like the last one (where the job last changed from pass to fail or back).
    pub async fn job_build_summary(&self, job_id: i64) -> DbResult<(Option<Build>, Option<Build>, Option<Build>)> {
        let next: Option<BuildRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {BUILD_COLUMNS} {BUILD_JOINS} WHERE b.job_id = $1 AND NOT b.completed ORDER BY b.id ASC LIMIT 1"
        ))).bind(job_id).fetch_optional(pool).await)?;
        let finished: Option<BuildRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {BUILD_COLUMNS} {BUILD_JOINS} WHERE b.job_id = $1 AND b.completed ORDER BY b.id DESC LIMIT 1"
        ))).bind(job_id).fetch_optional(pool).await)?;
        let finished = finished.map(Build::try_from).transpose()?;
        let transition: Option<BuildRow> = match &finished {
            Some(last) => on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
                "SELECT {BUILD_COLUMNS} {BUILD_JOINS} WHERE b.job_id = $1 AND b.completed AND b.id > COALESCE(
                    (SELECT MAX(o.id) FROM builds o WHERE o.job_id = $1 AND o.completed AND o.status <> $2), 0)
                 ORDER BY b.id ASC LIMIT 1"
            ))).bind(job_id).bind(last.status.as_str()).fetch_optional(pool).await)?,
            None => None,
        };
        Ok((next.map(Build::try_from).transpose()?, finished, transition.map(Build::try_from).transpose()?))
    }

    /// Creates a rerun of `original`: same job, named `N.M`, with its inputs.
    pub async fn create_rerun(
        &self,
        original: &Build,
        created_by: Option<&str>,
        span_context: Option<&str>,
    ) -> DbResult<i64> {
        let base_id = original.rerun_of.unwrap_or(original.id);
        let base_name = original.name.split('.').next().unwrap_or(&original.name).to_string();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // Reruns in one team take turns, so each counts the ones before it.
            // The team's row is the lock: a cascading delete takes it first too,
            // so a concurrent deletion waits instead of deadlocking.
            let team = sqlx::query("UPDATE teams SET id = id WHERE id = $1")
                .bind(original.team_id).execute(&mut *tx).await?.rows_affected();
            if team == 0 {
                return Err(DbError::NotFound("team".into()));
            }
            let reruns: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM builds WHERE rerun_of = $1")
                .bind(base_id).fetch_one(&mut *tx).await?;
            let number = reruns + 1;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO builds (name, status, team_id, pipeline_id, job_id, create_time, manually_triggered,
                    created_by, rerun_of, rerun_number, inputs_ready, span_context)
                 VALUES ($1, 'pending', $2, $3, $4, $5, TRUE, $6, $7, $8, TRUE, $9) RETURNING id"
            ).bind(format!("{base_name}.{number}")).bind(original.team_id).bind(original.pipeline_id)
            .bind(original.job_id).bind(now()).bind(created_by).bind(base_id).bind(number).bind(span_context)
            .fetch_one(&mut *tx).await.map_err(parent_deleted(format!("build {}", original.name)))?;
            sqlx::query(
                "INSERT INTO build_inputs (build_id, name, resource_id, version_id, first_occurrence)
                 SELECT $1, name, resource_id, version_id, FALSE FROM build_inputs WHERE build_id = $2"
            ).bind(id).bind(base_id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    pub async fn find_build(&self, id: i64) -> DbResult<Option<Build>> {
        let row: Option<BuildRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {BUILD_COLUMNS} {BUILD_JOINS} WHERE b.id = $1"
        ))).bind(id).fetch_optional(pool).await)?;
        row.map(Build::try_from).transpose()
    }

    /// The latest check build of each resource of the pipeline that has
    /// one: the resource's check status (Concourse's `build` of a resource).
    pub async fn last_check_builds(&self, pipeline_id: i64) -> DbResult<Vec<Build>> {
        let rows: Vec<BuildRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {BUILD_COLUMNS} {BUILD_JOINS} WHERE b.id IN (
                SELECT (SELECT MAX(c.id) FROM builds c WHERE c.resource_id = cr.id)
                FROM resources cr WHERE cr.pipeline_id = $1)"
        ))).bind(pipeline_id).fetch_all(pool).await)?;
        rows.into_iter().map(Build::try_from).collect()
    }

    /// One page of the builds the filter selects, newest first.
    pub async fn builds(&self, filter: &BuildFilter, page: Page) -> DbResult<BuildPage> {
        if let (Some(from), Some(to)) = (page.from, page.to)
            && from > to
        {
            return Err(DbError::Invalid(format!("invalid range: from {from} is after to {to}")));
        }
        let (condition, binds) = filter.condition();
        let n = binds.len();
        let (bounds, ascending) = match (page.from, page.to) {
            (None, None) => (String::new(), false),
            (Some(_), None) => (format!(" AND b.id >= ${}", n + 1), true),
            (None, Some(_)) => (format!(" AND b.id <= ${}", n + 1), false),
            (Some(_), Some(_)) => (format!(" AND b.id >= ${} AND b.id <= ${}", n + 1, n + 2), true),
        };
        let order = if ascending { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT {BUILD_COLUMNS} {BUILD_JOINS} WHERE {condition}{bounds} ORDER BY b.id {order} LIMIT ${}",
            n + 1 + usize::from(page.from.is_some()) + usize::from(page.to.is_some())
        );
        let rows: Vec<BuildRow> = on_pool!(self, pool => {
            let mut query = sqlx::query_as(AssertSqlSafe(sql.as_str()));
            for bind in &binds {
                query = match bind {
                    FilterBind::Id(id) => query.bind(*id),
                    FilterBind::Name(name) => query.bind(name.as_str()),
                };
            }
            if let Some(from) = page.from {
                query = query.bind(from);
            }
            if let Some(to) = page.to {
                query = query.bind(to);
            }
            query.bind(page.limit).fetch_all(pool).await
        })?;
        let mut builds = rows.into_iter().map(Build::try_from).collect::<DbResult<Vec<Build>>>()?;
        if ascending {
            builds.reverse();
        }
        let (Some(newest), Some(oldest)) = (builds.first(), builds.last()) else {
            return Ok(BuildPage { builds, newer: None, older: None });
        };
        let (newest, oldest) = (newest.id, oldest.id);
        let neighbour = |comparison: &'static str, order: &'static str, edge: i64| {
            let sql = format!(
                "SELECT b.id {BUILD_JOINS} WHERE {condition} AND b.id {comparison} ${} ORDER BY b.id {order} LIMIT 1",
                n + 1
            );
            let binds = &binds;
            async move {
                let found: Option<i64> = on_pool!(self, pool => {
                    let mut query = sqlx::query_scalar(AssertSqlSafe(sql.as_str()));
                    for bind in binds {
                        query = match bind {
                            FilterBind::Id(id) => query.bind(*id),
                            FilterBind::Name(name) => query.bind(name.as_str()),
                        };
                    }
                    query.bind(edge).fetch_optional(pool).await
                })?;
                DbResult::Ok(found)
            }
        };
        let older =
            neighbour("<", "DESC", oldest).await?.map(|id| Page { from: None, to: Some(id), limit: page.limit });
        let newer = neighbour(">", "ASC", newest).await?.map(|id| Page { from: Some(id), to: None, limit: page.limit });
        Ok(BuildPage { builds, newer, older })
    }
}

impl Db {
    /// The check of this resource (or type) that is still running, if any.
    pub async fn check_in_progress(&self, owner: super::VersionOwner) -> DbResult<Option<i64>> {
        let column = match owner {
            super::VersionOwner::Resource(_) => "resource_id",
            super::VersionOwner::ResourceType(_) => "resource_type_id",
        };
        let id = match owner {
            super::VersionOwner::Resource(id) | super::VersionOwner::ResourceType(id) => id,
        };
        Ok(on_pool!(self, pool => sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT id FROM builds WHERE {column} = $1 AND NOT completed ORDER BY id LIMIT 1"
        ))).bind(id).fetch_optional(pool).await)?)
    }
}
