//! Builds as the API lists them, with Concourse's id-based pagination.

use sqlx::AssertSqlSafe;

use super::{Db, DbError, DbResult, now, on_pool};

/// A build as the API presents it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Build {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub team_id: i64,
    pub team_name: String,
    pub pipeline_id: Option<i64>,
    pub pipeline_name: Option<String>,
    pub pipeline_instance_vars: Option<String>,
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
pub enum BuildScope {
    All,
    /// Builds of these teams, plus those of public jobs of public pipelines.
    VisibleTo(Vec<String>),
    Team(i64),
    Pipeline(i64),
    Job(i64),
}

const BUILD_COLUMNS: &str = "b.id, b.name, b.status, b.team_id, t.name AS team_name, b.pipeline_id,
    p.name AS pipeline_name, p.instance_vars AS pipeline_instance_vars, b.job_id, j.name AS job_name,
    r.name AS resource_name, rt.name AS resource_type_name, b.create_time, b.start_time, b.end_time,
    b.reap_time, b.rerun_of, rb.name AS rerun_of_name, b.rerun_number, b.comment, b.created_by";

const BUILD_JOINS: &str = "FROM builds b
    JOIN teams t ON t.id = b.team_id
    LEFT JOIN pipelines p ON p.id = b.pipeline_id
    LEFT JOIN jobs j ON j.id = b.job_id
    LEFT JOIN resources r ON r.id = b.resource_id
    LEFT JOIN resource_types rt ON rt.id = b.resource_type_id
    LEFT JOIN builds rb ON rb.id = b.rerun_of";

/// A new build row; the engine fills in plans and statuses later.
#[derive(Debug, Clone, Default)]
pub struct NewBuild {
    pub team_id: i64,
    pub pipeline_id: Option<i64>,
    pub job_id: Option<i64>,
    pub name: String,
    pub manually_triggered: bool,
    pub created_by: Option<String>,
}

impl BuildScope {
    /// The WHERE clause for this scope; its binds start at `$1`.
    fn condition(&self) -> (String, Vec<ScopeBind>) {
        match self {
            BuildScope::All => ("TRUE".into(), vec![]),
            BuildScope::Team(id) => ("b.team_id = $1".into(), vec![ScopeBind::Id(*id)]),
            BuildScope::Pipeline(id) => ("b.pipeline_id = $1".into(), vec![ScopeBind::Id(*id)]),
            BuildScope::Job(id) => ("b.job_id = $1".into(), vec![ScopeBind::Id(*id)]),
            BuildScope::VisibleTo(teams) => {
                let placeholders: Vec<String> = (1..=teams.len()).map(|i| format!("${i}")).collect();
                let mine = if teams.is_empty() {
                    "FALSE".to_string()
                } else {
                    format!("t.name IN ({})", placeholders.join(", "))
                };
                (format!("({mine} OR (p.public AND j.public))"), teams.iter().cloned().map(ScopeBind::Name).collect())
            }
        }
    }
}

enum ScopeBind {
    Id(i64),
    Name(String),
}

impl Db {
    pub async fn create_build(&self, build: &NewBuild) -> DbResult<i64> {
        Ok(on_pool!(self, pool => sqlx::query_scalar(
            "INSERT INTO builds (name, status, team_id, pipeline_id, job_id, create_time, manually_triggered, created_by)
             VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7) RETURNING id"
        ).bind(&build.name).bind(build.team_id).bind(build.pipeline_id).bind(build.job_id).bind(now())
        .bind(build.manually_triggered).bind(&build.created_by).fetch_one(pool).await)?)
    }

    pub async fn find_build(&self, id: i64) -> DbResult<Option<Build>> {
        Ok(on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {BUILD_COLUMNS} {BUILD_JOINS} WHERE b.id = $1"
        ))).bind(id).fetch_optional(pool).await)?)
    }

    /// One page of builds in `scope`, newest first.
    pub async fn builds(&self, scope: &BuildScope, page: Page) -> DbResult<BuildPage> {
        if let (Some(from), Some(to)) = (page.from, page.to)
            && from > to
        {
            return Err(DbError::Invalid(format!("invalid range: from {from} is after to {to}")));
        }
        let (condition, binds) = scope.condition();
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
        let mut builds: Vec<Build> = on_pool!(self, pool => {
            let mut query = sqlx::query_as(AssertSqlSafe(sql.as_str()));
            for bind in &binds {
                query = match bind {
                    ScopeBind::Id(id) => query.bind(*id),
                    ScopeBind::Name(name) => query.bind(name.as_str()),
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
                            ScopeBind::Id(id) => query.bind(*id),
                            ScopeBind::Name(name) => query.bind(name.as_str()),
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
