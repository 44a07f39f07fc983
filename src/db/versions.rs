//! Versions of resources and resource types, in the order checks found
//! them, with what builds used and produced them.

use futures_util::TryStreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::stored::Cell;
use super::{Db, DbError, DbResult, WritePool, now, on_pool};
use crate::telemetry::spans::DbOperation;

/// Whose versions: a resource's or a resource type's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionOwner {
    Resource(i64),
    ResourceType(i64),
}

impl VersionOwner {
    /// The table of the owner itself.
    fn table(self) -> &'static str {
        match self {
            VersionOwner::Resource(_) => "resources",
            VersionOwner::ResourceType(_) => "resource_types",
        }
    }

    fn column(self) -> &'static str {
        match self {
            VersionOwner::Resource(_) => "resource_id",
            VersionOwner::ResourceType(_) => "resource_type_id",
        }
    }

    fn id(self) -> i64 {
        match self {
            VersionOwner::Resource(id) | VersionOwner::ResourceType(id) => id,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceVersion {
    pub id: i64,
    /// The version (`{"ref":"abc"}`).
    pub version: Value,
    /// `[{"name":..,"value":..}]`.
    pub metadata: Value,
    pub check_order: i64,
    pub enabled: bool,
    pub span_context: Option<String>,
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    id: i64,
    version: String,
    metadata: String,
    check_order: i64,
    enabled: bool,
    span_context: Option<String>,
}

impl TryFrom<VersionRow> for ResourceVersion {
    type Error = DbError;

    fn try_from(row: VersionRow) -> DbResult<ResourceVersion> {
        let cell = |column| Cell::new("resource_versions", row.id, column);
        Ok(ResourceVersion {
            version: cell("version").parse(&row.version)?,
            metadata: cell("metadata").parse(&row.metadata)?,
            id: row.id,
            check_order: row.check_order,
            enabled: row.enabled,
            span_context: row.span_context,
        })
    }
}

/// A window of versions by id, as the API pages them (`from`/`to` inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionPage {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: i64,
}

/// Versions newest first, with the ids that start the next pages.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionList {
    pub versions: Vec<ResourceVersion>,
    /// Id of the newest version of the older page, if any.
    pub older: Option<i64>,
    /// Id of the oldest version of the newer page, if any.
    pub newer: Option<i64>,
}

/// The versions a listing pages through.
struct History<'a> {
    resource_id: i64,
    config_hash: &'a str,
    filter: &'a serde_json::Map<String, Value>,
}

impl History<'_> {
    fn matches(&self, row: &ResourceVersion) -> bool {
        self.filter.iter().all(|(key, want)| row.version.get(key) == Some(want))
    }
}

/// Where a scan of a history starts (by `check_order`), and so its direction.
#[derive(Debug, Clone, Copy)]
enum Bound {
    Newest,
    AtOrOlder(i64),
    Older(i64),
    AtOrNewer(i64),
    Newer(i64),
}

impl Bound {
    /// The condition on `check_order` (bound as `$3`) and the order to read in.
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            Bound::Newest => ("", "DESC"),
            Bound::AtOrOlder(_) => (" AND check_order <= $3", "DESC"),
            Bound::Older(_) => (" AND check_order < $3", "DESC"),
            Bound::AtOrNewer(_) => (" AND check_order >= $3", "ASC"),
            Bound::Newer(_) => (" AND check_order > $3", "ASC"),
        }
    }

    fn check_order(self) -> Option<i64> {
        match self {
            Bound::Newest => None,
            Bound::AtOrOlder(order) | Bound::Older(order) | Bound::AtOrNewer(order) | Bound::Newer(order) => {
                Some(order)
            }
        }
    }
}

/// Identifies a version by content, whatever the key order of its JSON.
pub fn version_digest(version: &Value) -> String {
    // serde_json's maps are ordered by key, so equal versions print equally.
    let canonical = serde_json::to_string(version).unwrap_or_default();
    Sha256::digest(canonical.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

const VERSION_COLUMNS: &str = "id, version, metadata, check_order, enabled, span_context";

/// Where `fly clear-versions` puts the versions of history `config_hash`:
/// out of every listing and of the scheduler's view, while the builds that
/// used them keep their record and a check that finds one again brings it
/// back under its old id (as Concourse keys build inputs by version digest).
fn cleared_history(config_hash: &str) -> String {
    format!("cleared:{config_hash}")
}

impl Db {
    /// Saves versions in the order given (oldest first): each one, new or
    /// seen before, becomes newer than every version before it, as a check
    /// reports them. Returns their ids in the same order.
    pub async fn save_versions(
        &self,
        owner: VersionOwner,
        config_hash: &str,
        versions: &[(Value, Value)],
        span_context: Option<&str>,
    ) -> DbResult<Vec<i64>> {
        let span = self.operation_span(DbOperation::SaveVersions);
        let saved = self.insert_versions(owner, config_hash, versions, span_context).await;
        span.end(&saved);
        saved
    }

    async fn insert_versions(
        &self,
        owner: VersionOwner,
        config_hash: &str,
        versions: &[(Value, Value)],
        span_context: Option<&str>,
    ) -> DbResult<Vec<i64>> {
        let column = owner.column();
        let now = now();
        let table = owner.table();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // Checks of one resource running at once (a manual one next to
            // the periodic one) take turns: this locks the owner's row on
            // PostgreSQL; SQLite's write transactions are serial already.
            sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE {table} SET id = id WHERE id = $1")))
                .bind(owner.id()).execute(&mut *tx).await?;
            let mut ids = Vec::with_capacity(versions.len());
            for (version, metadata) in versions {
                let digest = version_digest(version);
                let newest: Option<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT id, check_order FROM resource_versions WHERE {column} = $1 AND config_hash = $2
                     ORDER BY check_order DESC LIMIT 1"
                ))).bind(owner.id()).bind(config_hash).fetch_optional(&mut *tx).await?;
                let existing: Option<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT id, config_hash FROM resource_versions
                     WHERE {column} = $1 AND config_hash IN ($2, $3) AND version_digest = $4"
                ))).bind(owner.id()).bind(config_hash).bind(cleared_history(config_hash)).bind(&digest)
                .fetch_optional(&mut *tx).await?;
                if let Some((id, history)) = &existing && history != config_hash {
                    sqlx::query("UPDATE resource_versions SET config_hash = $1 WHERE id = $2")
                        .bind(config_hash).bind(id).execute(&mut *tx).await?;
                }
                let existing = existing.map(|(id, _)| id);
                let next_order = newest.map_or(1, |(_, order)| order + 1);
                // A check reports no metadata; keep what a get or put recorded.
                let keeps_metadata = metadata.as_array().is_some_and(|m| m.is_empty()) || metadata.is_null();
                let id = match existing {
                    Some(id) => {
                        if newest.map(|(newest_id, _)| newest_id) != Some(id) {
                            sqlx::query("UPDATE resource_versions SET check_order = $1 WHERE id = $2")
                                .bind(next_order).bind(id).execute(&mut *tx).await?;
                        }
                        if !keeps_metadata {
                            sqlx::query("UPDATE resource_versions SET metadata = $1 WHERE id = $2")
                                .bind(metadata.to_string()).bind(id).execute(&mut *tx).await?;
                        }
                        id
                    }
                    None => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO resource_versions ({column}, config_hash, version, version_digest, metadata,
                            check_order, span_context, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id"
                    ))).bind(owner.id()).bind(config_hash).bind(version.to_string()).bind(&digest)
                    .bind(metadata.to_string()).bind(next_order).bind(span_context).bind(now)
                    .fetch_one(&mut *tx).await?,
                };
                ids.push(id);
            }
            tx.commit().await?;
            Ok(ids)
        })
    }

    /// The newest version of the current history.
    pub async fn latest_version(&self, owner: VersionOwner, config_hash: &str) -> DbResult<Option<ResourceVersion>> {
        let column = owner.column();
        let row: Option<VersionRow> = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {VERSION_COLUMNS} FROM resource_versions WHERE {column} = $1 AND config_hash = $2
             ORDER BY check_order DESC LIMIT 1"
        ))).bind(owner.id()).bind(config_hash).fetch_optional(pool).await)?;
        row.map(ResourceVersion::try_from).transpose()
    }

    pub async fn find_version(&self, owner: VersionOwner, version_id: i64) -> DbResult<Option<ResourceVersion>> {
        let column = owner.column();
        let row: Option<VersionRow> = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {VERSION_COLUMNS} FROM resource_versions WHERE {column} = $1 AND id = $2"
        ))).bind(owner.id()).bind(version_id).fetch_optional(pool).await)?;
        row.map(ResourceVersion::try_from).transpose()
    }

    /// The version with this content in the current history.
    pub async fn find_version_by_content(
        &self,
        owner: VersionOwner,
        config_hash: &str,
        version: &Value,
    ) -> DbResult<Option<ResourceVersion>> {
        let column = owner.column();
        let row: Option<VersionRow> = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {VERSION_COLUMNS} FROM resource_versions
             WHERE {column} = $1 AND config_hash = $2 AND version_digest = $3"
        ))).bind(owner.id()).bind(config_hash).bind(version_digest(version)).fetch_optional(pool).await)?;
        row.map(ResourceVersion::try_from).transpose()
    }

    /// A page of a resource's current history, newest first. With `filter`,
    /// only versions containing all of its fields are listed. Rows are read
    /// in history order from the page's edge and no further than the page
    /// (and its neighbours) need, so a long history costs no more than a
    /// short one.
    pub async fn list_versions(
        &self,
        resource_id: i64,
        config_hash: &str,
        page: VersionPage,
        filter: &serde_json::Map<String, Value>,
    ) -> DbResult<VersionList> {
        let limit = page.limit.max(1) as usize;
        let history = History { resource_id, config_hash, filter };
        // `from` wins over `to`; an id outside this history pages from the newest.
        let from = match page.from {
            Some(id) => self.check_order_of(&history, id).await?,
            None => None,
        };
        let to = match (from, page.to) {
            (None, Some(id)) => self.check_order_of(&history, id).await?,
            _ => None,
        };
        let edge_id = |versions: &[ResourceVersion]| versions.first().map(|v| v.id);
        if let Some(from) = from {
            // `from` is the oldest of the page: read newer from it.
            let mut versions = self.scan_history(&history, Bound::AtOrNewer(from), limit + 1).await?;
            let newer = (versions.len() > limit).then(|| versions.pop()).flatten().map(|v| v.id);
            versions.reverse();
            let oldest = versions.last().map_or(from, |v| v.check_order);
            let older = edge_id(&self.scan_history(&history, Bound::Older(oldest), 1).await?);
            return Ok(VersionList { versions, older, newer });
        }
        let start = to.map_or(Bound::Newest, Bound::AtOrOlder);
        let mut versions = self.scan_history(&history, start, limit + 1).await?;
        let older = (versions.len() > limit).then(|| versions.pop()).flatten().map(|v| v.id);
        let newer = match to {
            None => None,
            Some(to) => {
                let newest = versions.first().map_or(to, |v| v.check_order);
                edge_id(&self.scan_history(&history, Bound::Newer(newest), 1).await?)
            }
        };
        Ok(VersionList { versions, older, newer })
    }

    /// Where version `id` stands in the history, if it belongs to it.
    async fn check_order_of(&self, history: &History<'_>, id: i64) -> DbResult<Option<i64>> {
        Ok(on_pool!(self, pool => sqlx::query_scalar(
            "SELECT check_order FROM resource_versions WHERE resource_id = $1 AND config_hash = $2 AND id = $3"
        ).bind(history.resource_id).bind(history.config_hash).bind(id).fetch_optional(pool).await)?)
    }

    /// Up to `count` versions of `history` matching its filter, from `bound`
    /// on, nearest first. Rows are streamed and filtered one at a time.
    async fn scan_history(&self, history: &History<'_>, bound: Bound, count: usize) -> DbResult<Vec<ResourceVersion>> {
        let (condition, order) = bound.sql();
        // Without a filter every row counts, so the database can stop early.
        let limit = if history.filter.is_empty() { format!(" LIMIT {count}") } else { String::new() };
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM resource_versions WHERE resource_id = $1 AND config_hash = $2{condition}
             ORDER BY check_order {order}{limit}"
        );
        on_pool!(self, pool => {
            let mut query = sqlx::query_as::<_, VersionRow>(sqlx::AssertSqlSafe(sql))
                .bind(history.resource_id)
                .bind(history.config_hash);
            if let Some(check_order) = bound.check_order() {
                query = query.bind(check_order);
            }
            let mut rows = query.fetch(pool);
            let mut found = Vec::new();
            while found.len() < count {
                let Some(row) = rows.try_next().await? else { break };
                let row = ResourceVersion::try_from(row)?;
                if history.matches(&row) {
                    found.push(row);
                }
            }
            Ok(found)
        })
    }

    /// `fly clear-versions`: empties the current history of a resource or
    /// resource type (see [`cleared_history`]); returns how many versions
    /// it held.
    pub async fn clear_versions(&self, owner: VersionOwner, config_hash: &str) -> DbResult<u64> {
        let column = owner.column();
        let table = owner.table();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // Takes turns with checks saving versions (see `insert_versions`).
            sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE {table} SET id = id WHERE id = $1")))
                .bind(owner.id()).execute(&mut *tx).await?;
            // A version cleared before and found again since was moved back,
            // so nothing of this history is in the cleared one twice.
            let moved = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE resource_versions SET config_hash = $1 WHERE {column} = $2 AND config_hash = $3"
            ))).bind(cleared_history(config_hash)).bind(owner.id()).bind(config_hash)
            .execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok(moved)
        })
    }

    /// Disabled versions are never used by the scheduler.
    pub async fn set_version_enabled(&self, resource_id: i64, version_id: i64, enabled: bool) -> DbResult<bool> {
        let updated = on_pool!(self, pool => sqlx::query(
            "UPDATE resource_versions SET enabled = $1 WHERE resource_id = $2 AND id = $3"
        ).bind(enabled).bind(resource_id).bind(version_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(updated > 0)
    }

    pub async fn pin_version(&self, resource_id: i64, version_id: Option<i64>) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE resources SET api_pinned_version_id = $1, pin_comment = CASE WHEN $1 IS NULL THEN '' ELSE pin_comment END
             WHERE id = $2"
        ).bind(version_id).bind(resource_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn set_pin_comment(&self, resource_id: i64, comment: &str) -> DbResult<()> {
        on_pool!(self, pool => sqlx::query("UPDATE resources SET pin_comment = $1 WHERE id = $2")
            .bind(comment).bind(resource_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records when a resource (or type) was checked and how it went.
    pub async fn record_check(&self, owner: VersionOwner, started: i64, error: Option<&str>) -> DbResult<()> {
        let table = owner.table();
        on_pool!(self, pool => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET last_check_start = $1, last_check_end = $2, check_error = $3 WHERE id = $4"
        ))).bind(started).bind(now()).bind(error).bind(owner.id()).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::version_digest;

    #[test]
    fn digests_ignore_key_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":"1","b":"2"}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"b":"2","a":"1"}"#).unwrap();
        assert_eq!(version_digest(&a), version_digest(&b));
        assert_ne!(version_digest(&a), version_digest(&json!({"a": "1"})));
    }
}
