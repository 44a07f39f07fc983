//! The API's JSON as the pages read it: only the fields they show, each
//! with a default, so a field the API leaves out (`omitempty`) is no error.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub user_name: String,
    #[serde(default)]
    pub is_admin: bool,
    /// Team name → the user's roles on it.
    #[serde(default)]
    pub teams: BTreeMap<String, Vec<String>>,
}

impl User {
    /// Whether the user holds one of `roles` on `team` (admins hold every role).
    pub fn has_role(&self, team: &str, roles: &[&str]) -> bool {
        self.is_admin || self.teams.get(team).is_some_and(|held| held.iter().any(|r| roles.contains(&r.as_str())))
    }

    /// May pause, trigger, pin and abort in `team`.
    pub fn operates(&self, team: &str) -> bool {
        self.has_role(team, &["owner", "member", "pipeline-operator"])
    }

    /// May expose and hide pipelines of `team`.
    pub fn is_member(&self, team: &str) -> bool {
        self.has_role(team, &["owner", "member"])
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Team {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    pub name: String,
    #[serde(default)]
    pub jobs: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pipeline {
    pub id: i64,
    pub name: String,
    pub team_name: String,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub instance_vars: Option<serde_json::Value>,
    #[serde(default)]
    pub groups: Option<Vec<Group>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RerunOf {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Build {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub team_name: String,
    #[serde(default)]
    pub job_name: Option<String>,
    #[serde(default)]
    pub pipeline_name: Option<String>,
    #[serde(default)]
    pub pipeline_instance_vars: Option<serde_json::Value>,
    #[serde(default)]
    pub start_time: i64,
    #[serde(default)]
    pub end_time: i64,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub rerun_of: Option<RerunOf>,
}

impl Build {
    pub fn is_running(&self) -> bool {
        matches!(self.status.as_str(), "pending" | "started")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct JobInput {
    pub resource: String,
    #[serde(default)]
    pub trigger: bool,
    #[serde(default)]
    pub passed: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JobOutput {
    pub resource: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub id: i64,
    pub name: String,
    pub team_name: String,
    pub pipeline_id: i64,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub disable_manual_trigger: bool,
    #[serde(default)]
    pub next_build: Option<Build>,
    #[serde(default)]
    pub finished_build: Option<Build>,
    #[serde(default)]
    pub inputs: Vec<JobInput>,
    #[serde(default)]
    pub outputs: Vec<JobOutput>,
}

impl Job {
    /// The status the UI colours the job by, as Concourse's UI does: paused
    /// first, then the last finished build's, `pending` without one; a
    /// running build shows as `started` on top of it (see [`Job::running`]).
    pub fn status(&self) -> &str {
        if self.paused {
            return "paused";
        }
        self.finished_build.as_ref().map_or("pending", |b| b.status.as_str())
    }

    pub fn running(&self) -> bool {
        self.next_build.as_ref().is_some_and(|b| b.status == "started")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Resource {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub last_checked: i64,
    #[serde(default)]
    pub pinned_version: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub pinned_in_config: bool,
    #[serde(default)]
    pub pin_comment: String,
    /// The latest check.
    #[serde(default)]
    pub build: Option<Build>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetadataField {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Version {
    pub id: i64,
    pub version: BTreeMap<String, String>,
    #[serde(default)]
    pub metadata: Vec<MetadataField>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct BuildPlan {
    pub plan: serde_json::Value,
}

/// `GET J/inputs`: what the job's next build would use.
#[derive(Debug, Clone, Deserialize)]
pub struct NextInput {
    pub name: String,
    pub resource: String,
    #[serde(default)]
    pub version: BTreeMap<String, String>,
}
