//! Teams and who holds which role on them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Db, DbError, DbResult, on_pool, unique_violation};

/// Who holds a role: users and groups written `connector:name` (`local:admin`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleMembers {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A team's auth configuration: role name → members, as Concourse stores it.
pub type TeamAuth = BTreeMap<String, RoleMembers>;

#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub auth: TeamAuth,
}

#[derive(sqlx::FromRow)]
struct TeamRow {
    id: i64,
    name: String,
    auth: String,
}

impl TeamRow {
    fn into_team(self) -> DbResult<Team> {
        let auth = serde_json::from_str(&self.auth)
            .map_err(|e| DbError::Invalid(format!("team '{}' has unreadable auth: {e}", self.name)))?;
        Ok(Team { id: self.id, name: self.name, auth })
    }
}

fn auth_json(auth: &TeamAuth) -> String {
    serde_json::to_string(auth).expect("team auth serializes")
}

impl Db {
    pub async fn list_teams(&self) -> DbResult<Vec<Team>> {
        let rows: Vec<TeamRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, name, auth FROM teams ORDER BY name"
        ).fetch_all(pool).await)?;
        rows.into_iter().map(TeamRow::into_team).collect()
    }

    pub async fn find_team(&self, name: &str) -> DbResult<Option<Team>> {
        let row: Option<TeamRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, name, auth FROM teams WHERE name = $1"
        ).bind(name).fetch_optional(pool).await)?;
        row.map(TeamRow::into_team).transpose()
    }

    /// Creates the team or replaces its auth; returns it and whether it was created.
    pub async fn save_team(&self, name: &str, auth: &TeamAuth) -> DbResult<(Team, bool)> {
        let auth = auth_json(auth);
        // Whichever statement wrote the row says whether it is new, so of
        // concurrent saves of a new team exactly one creates it.
        loop {
            let created: Option<TeamRow> = on_pool!(self, pool => sqlx::query_as(
                "INSERT INTO teams (name, auth) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING
                 RETURNING id, name, auth"
            ).bind(name).bind(&auth).fetch_optional(pool).await)?;
            if let Some(row) = created {
                return Ok((row.into_team()?, true));
            }
            let updated: Option<TeamRow> = on_pool!(self, pool => sqlx::query_as(
                "UPDATE teams SET auth = $1 WHERE name = $2 RETURNING id, name, auth"
            ).bind(&auth).bind(name).fetch_optional(pool).await)?;
            if let Some(row) = updated {
                return Ok((row.into_team()?, false));
            }
            // Deleted between the two statements: create it after all.
        }
    }

    /// Renames a team; false when no team had `from` as its name.
    pub async fn rename_team(&self, from: &str, to: &str) -> DbResult<bool> {
        let result = on_pool!(self, pool => sqlx::query(
            "UPDATE teams SET name = $1 WHERE name = $2"
        ).bind(to).bind(from).execute(pool).await.map(|r| r.rows_affected()))
        .map_err(unique_violation(format!("team '{to}'")))?;
        Ok(result > 0)
    }

    /// Deletes a team with its pipelines and builds; false when it did not exist.
    pub async fn delete_team(&self, name: &str) -> DbResult<bool> {
        let affected = on_pool!(self, pool => sqlx::query(
            "DELETE FROM teams WHERE name = $1"
        ).bind(name).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(affected > 0)
    }
}
