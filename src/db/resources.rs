//! Resources and resource types of a pipeline.

use serde_json::Value;
use sqlx::AssertSqlSafe;

use super::stored::Cell;
use super::{Db, DbResult, on_pool};

#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub id: i64,
    pub pipeline_id: i64,
    pub name: String,
    pub type_: String,
    /// The resource's configuration.
    pub config: Value,
    pub config_hash: String,
    /// The version pinned through the API (`fly pin-resource`), and its id.
    pub api_pinned_version: Option<Value>,
    pub api_pinned_version_id: Option<i64>,
    pub pin_comment: String,
    pub last_check_start: i64,
    pub last_check_end: i64,
    pub check_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    pub id: i64,
    pub pipeline_id: i64,
    pub name: String,
    pub type_: String,
    /// The resource type's configuration.
    pub config: Value,
    pub config_hash: String,
    pub last_check_start: i64,
    pub last_check_end: i64,
    pub check_error: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ResourceRow {
    id: i64,
    pipeline_id: i64,
    name: String,
    #[sqlx(rename = "type")]
    type_: String,
    config: String,
    nonce: Option<String>,
    config_hash: String,
    api_pinned_version: Option<String>,
    api_pinned_version_id: Option<i64>,
    pin_comment: String,
    last_check_start: i64,
    last_check_end: i64,
    check_error: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ResourceTypeRow {
    id: i64,
    pipeline_id: i64,
    name: String,
    #[sqlx(rename = "type")]
    type_: String,
    config: String,
    nonce: Option<String>,
    config_hash: String,
    last_check_start: i64,
    last_check_end: i64,
    check_error: Option<String>,
}

const RESOURCE_COLUMNS: &str = "id, pipeline_id, name, type, config, nonce, config_hash,
    (SELECT v.version FROM resource_versions v WHERE v.id = resources.api_pinned_version_id) AS api_pinned_version,
    api_pinned_version_id, pin_comment, last_check_start, last_check_end, check_error";
const RESOURCE_TYPE_COLUMNS: &str = "id, pipeline_id, name, type, config, nonce, config_hash,
    last_check_start, last_check_end, check_error";

impl Db {
    fn resource_from_row(&self, row: ResourceRow) -> DbResult<Resource> {
        let api_pinned_version = match (&row.api_pinned_version, row.api_pinned_version_id) {
            (Some(version), Some(version_id)) => {
                Some(Cell::new("resource_versions", version_id, "version").parse(version)?)
            }
            _ => None,
        };
        Ok(Resource {
            config: Cell::new("resources", row.id, "config").parse(&self.open(row.config, row.nonce)?)?,
            api_pinned_version,
            id: row.id,
            pipeline_id: row.pipeline_id,
            name: row.name,
            type_: row.type_,
            config_hash: row.config_hash,
            api_pinned_version_id: row.api_pinned_version_id,
            pin_comment: row.pin_comment,
            last_check_start: row.last_check_start,
            last_check_end: row.last_check_end,
            check_error: row.check_error,
        })
    }

    fn resource_type_from_row(&self, row: ResourceTypeRow) -> DbResult<ResourceType> {
        Ok(ResourceType {
            config: Cell::new("resource_types", row.id, "config").parse(&self.open(row.config, row.nonce)?)?,
            id: row.id,
            pipeline_id: row.pipeline_id,
            name: row.name,
            type_: row.type_,
            config_hash: row.config_hash,
            last_check_start: row.last_check_start,
            last_check_end: row.last_check_end,
            check_error: row.check_error,
        })
    }

    /// The active resources of a pipeline, in configuration order.
    pub async fn pipeline_resources(&self, pipeline_id: i64) -> DbResult<Vec<Resource>> {
        let rows: Vec<ResourceRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {RESOURCE_COLUMNS} FROM resources WHERE pipeline_id = $1 AND active ORDER BY id"
        ))).bind(pipeline_id).fetch_all(pool).await)?;
        rows.into_iter().map(|row| self.resource_from_row(row)).collect()
    }

    pub async fn find_resource(&self, pipeline_id: i64, name: &str) -> DbResult<Option<Resource>> {
        let row: Option<ResourceRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {RESOURCE_COLUMNS} FROM resources WHERE pipeline_id = $1 AND name = $2 AND active"
        ))).bind(pipeline_id).bind(name).fetch_optional(pool).await)?;
        row.map(|row| self.resource_from_row(row)).transpose()
    }

    /// The active resource types of a pipeline, in configuration order.
    pub async fn pipeline_resource_types(&self, pipeline_id: i64) -> DbResult<Vec<ResourceType>> {
        let rows: Vec<ResourceTypeRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {RESOURCE_TYPE_COLUMNS} FROM resource_types WHERE pipeline_id = $1 AND active ORDER BY id"
        ))).bind(pipeline_id).fetch_all(pool).await)?;
        rows.into_iter().map(|row| self.resource_type_from_row(row)).collect()
    }

    pub async fn find_resource_type(&self, pipeline_id: i64, name: &str) -> DbResult<Option<ResourceType>> {
        let row: Option<ResourceTypeRow> = on_pool!(self, pool => sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {RESOURCE_TYPE_COLUMNS} FROM resource_types WHERE pipeline_id = $1 AND name = $2 AND active"
        ))).bind(pipeline_id).bind(name).fetch_optional(pool).await)?;
        row.map(|row| self.resource_type_from_row(row)).transpose()
    }
}
