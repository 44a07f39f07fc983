//! How versions flowed through a pipeline's builds: the builds downstream
//! (or upstream) of a version, and the whole graph the scheduler works on
//! (Concourse's "versions DB", for debugging).

use serde_json::Value;
use sqlx::AssertSqlSafe;

use super::stored::Cell;
use super::{Db, DbError, DbResult, on_pool};

/// Which way to walk from a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CausalityDirection {
    /// The builds that used the version, the versions they put, the builds
    /// that used those, and so on.
    Downstream,
    /// The builds that put the version, the versions they used, the builds
    /// that put those, and so on.
    Upstream,
}

impl CausalityDirection {
    /// The build ids reached from resource `$1`'s version `$2`.
    fn reachable_builds(self) -> &'static str {
        match self {
            CausalityDirection::Downstream => {
                "WITH RECURSIVE build_ids(build_id) AS (
                    SELECT i.build_id FROM build_inputs i WHERE i.resource_id = $1 AND i.version_id = $2
                  UNION
                    SELECT i.build_id FROM build_ids bi
                    JOIN build_outputs o ON o.build_id = bi.build_id
                    JOIN build_inputs i ON i.resource_id = o.resource_id AND i.version_id = o.version_id
                    WHERE i.resource_id <> $1
                )"
            }
            CausalityDirection::Upstream => {
                "WITH RECURSIVE build_ids(build_id) AS (
                    SELECT o.build_id FROM build_outputs o WHERE o.resource_id = $1 AND o.version_id = $2
                  UNION
                    SELECT o.build_id FROM build_ids bi
                    JOIN build_inputs i ON i.build_id = bi.build_id
                    JOIN build_outputs o ON o.resource_id = i.resource_id AND o.version_id = i.version_id
                    WHERE i.resource_id <> $1
                )"
            }
        }
    }
}

/// A job build reached from the version.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CausalityBuild {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub job_id: i64,
    pub job_name: String,
}

/// A version one of those builds used (`is_input`) or put.
#[derive(Debug, Clone, PartialEq)]
pub struct CausalityEdge {
    pub build_id: i64,
    pub resource_id: i64,
    pub resource_name: String,
    pub version_id: i64,
    pub version: Value,
    pub is_input: bool,
}

#[derive(sqlx::FromRow)]
struct EdgeRow {
    build_id: i64,
    resource_id: i64,
    resource_name: String,
    version_id: i64,
    version: String,
    is_input: bool,
}

impl TryFrom<EdgeRow> for CausalityEdge {
    type Error = DbError;

    fn try_from(row: EdgeRow) -> DbResult<CausalityEdge> {
        Ok(CausalityEdge {
            version: Cell::new("resource_versions", row.version_id, "version").parse(&row.version)?,
            build_id: row.build_id,
            resource_id: row.resource_id,
            resource_name: row.resource_name,
            version_id: row.version_id,
            is_input: row.is_input,
        })
    }
}

/// Upper bounds on a causality graph, as Concourse has (it answers 422
/// beyond them).
pub const CAUSALITY_MAX_BUILDS: i64 = 5000;
pub const CAUSALITY_MAX_EDGES: i64 = 25000;

/// The versions DB of a pipeline, in Concourse's terms.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VersionsDb {
    /// (name, id) of its active jobs.
    pub jobs: Vec<(String, i64)>,
    /// (name, id) of its active resources.
    pub resources: Vec<(String, i64)>,
    pub versions: Vec<HistoryEntry>,
    pub build_inputs: Vec<FlowEntry>,
    /// Including the inputs of succeeded builds, which they pass on.
    pub build_outputs: Vec<FlowEntry>,
    /// (job id, build id, id of the build it reruns).
    pub reruns: Vec<(i64, i64, i64)>,
}

/// An enabled version in its resource's current history.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HistoryEntry {
    pub version_id: i64,
    pub resource_id: i64,
    pub check_order: i64,
}

/// A version going into or out of a job's build.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FlowEntry {
    pub version_id: i64,
    pub resource_id: i64,
    pub check_order: i64,
    pub build_id: i64,
    pub job_id: i64,
    /// The input's name; empty for outputs.
    pub name: String,
}

/// A build input with its build's status.
#[derive(sqlx::FromRow)]
struct InputRow {
    version_id: i64,
    resource_id: i64,
    check_order: i64,
    build_id: i64,
    job_id: i64,
    name: String,
    status: String,
}

impl InputRow {
    fn entry(&self) -> FlowEntry {
        FlowEntry {
            version_id: self.version_id,
            resource_id: self.resource_id,
            check_order: self.check_order,
            build_id: self.build_id,
            job_id: self.job_id,
            name: self.name.clone(),
        }
    }
}

/// Version `v` of resource `r` is enabled, in its current history, and `r` is active.
const CURRENT_VERSION: &str = "v.config_hash = r.config_hash AND r.active AND v.enabled";

impl Db {
    /// Up to `CAUSALITY_MAX_BUILDS + 1` job builds reached from a version.
    pub async fn causality_builds(
        &self,
        resource_id: i64,
        version_id: i64,
        direction: CausalityDirection,
    ) -> DbResult<Vec<CausalityBuild>> {
        let sql = format!(
            "{} SELECT b.id, b.name, b.status, j.id AS job_id, j.name AS job_name
             FROM build_ids bi JOIN builds b ON b.id = bi.build_id JOIN jobs j ON j.id = b.job_id
             ORDER BY b.id LIMIT {}",
            direction.reachable_builds(),
            CAUSALITY_MAX_BUILDS + 1
        );
        Ok(on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(sql))
            .bind(resource_id).bind(version_id).fetch_all(pool).await)?)
    }

    /// Up to `CAUSALITY_MAX_EDGES + 1` versions the reached builds used and put.
    pub async fn causality_edges(
        &self,
        resource_id: i64,
        version_id: i64,
        direction: CausalityDirection,
    ) -> DbResult<Vec<CausalityEdge>> {
        let sql = format!(
            "{} SELECT i.build_id, r.id AS resource_id, r.name AS resource_name, v.id AS version_id, v.version,
                    TRUE AS is_input
                FROM build_inputs i JOIN build_ids bi ON bi.build_id = i.build_id
                JOIN resources r ON r.id = i.resource_id JOIN resource_versions v ON v.id = i.version_id
             UNION ALL
             SELECT o.build_id, r.id AS resource_id, r.name AS resource_name, v.id AS version_id, v.version,
                    FALSE AS is_input
                FROM build_outputs o JOIN build_ids bi ON bi.build_id = o.build_id
                JOIN resources r ON r.id = o.resource_id JOIN resource_versions v ON v.id = o.version_id
             LIMIT {}",
            direction.reachable_builds(),
            CAUSALITY_MAX_EDGES + 1
        );
        let rows: Vec<EdgeRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(sql))
            .bind(resource_id).bind(version_id).fetch_all(pool).await)?;
        rows.into_iter().map(CausalityEdge::try_from).collect()
    }

    /// The pipeline's versions DB.
    pub async fn versions_db(&self, pipeline_id: i64) -> DbResult<VersionsDb> {
        let jobs = on_pool!(self, pool => sqlx::query_as(
            "SELECT name, id FROM jobs WHERE pipeline_id = $1 AND active ORDER BY id"
        ).bind(pipeline_id).fetch_all(pool).await)?;
        let resources = on_pool!(self, pool => sqlx::query_as(
            "SELECT name, id FROM resources WHERE pipeline_id = $1 AND active ORDER BY id"
        ).bind(pipeline_id).fetch_all(pool).await)?;
        let versions = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT v.id AS version_id, r.id AS resource_id, v.check_order
             FROM resource_versions v JOIN resources r ON r.id = v.resource_id AND {CURRENT_VERSION}
             WHERE r.pipeline_id = $1 ORDER BY v.id"
        ))).bind(pipeline_id).fetch_all(pool).await)?;
        let inputs: Vec<InputRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT v.id AS version_id, r.id AS resource_id, v.check_order, b.id AS build_id, b.job_id, i.name,
                b.status
             FROM build_inputs i JOIN builds b ON b.id = i.build_id
             JOIN resource_versions v ON v.id = i.version_id
             JOIN resources r ON r.id = i.resource_id AND {CURRENT_VERSION}
             WHERE r.pipeline_id = $1 AND b.job_id IS NOT NULL ORDER BY b.id, i.name"
        ))).bind(pipeline_id).fetch_all(pool).await)?;
        let mut build_outputs: Vec<FlowEntry> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT v.id AS version_id, r.id AS resource_id, v.check_order, b.id AS build_id, b.job_id, '' AS name
             FROM build_outputs o JOIN builds b ON b.id = o.build_id
             JOIN resource_versions v ON v.id = o.version_id
             JOIN resources r ON r.id = o.resource_id AND {CURRENT_VERSION}
             WHERE r.pipeline_id = $1 AND b.job_id IS NOT NULL AND b.status = 'succeeded' ORDER BY b.id"
        ))).bind(pipeline_id).fetch_all(pool).await)?;
        // A succeeded build passes its inputs on, as if it had put them.
        build_outputs.extend(
            inputs
                .iter()
                .filter(|row| row.status == "succeeded")
                .map(|row| FlowEntry { name: String::new(), ..row.entry() }),
        );
        let reruns = on_pool!(self, pool => sqlx::query_as(
            "SELECT b.job_id, b.id, b.rerun_of FROM builds b JOIN jobs j ON j.id = b.job_id
             WHERE b.pipeline_id = $1 AND j.active AND b.rerun_of IS NOT NULL ORDER BY b.id"
        ).bind(pipeline_id).fetch_all(pool).await)?;
        Ok(VersionsDb {
            jobs,
            resources,
            versions,
            build_inputs: inputs.iter().map(InputRow::entry).collect(),
            build_outputs,
            reruns,
        })
    }
}
