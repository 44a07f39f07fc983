//! The JSON shapes of the Concourse API (see compat.md), built from database
//! records. `omitempty` fields of Concourse are skipped the same way here.

use serde::Serialize;
use serde_json::Value;

use crate::db;

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

#[derive(Serialize)]
pub struct Pipeline {
    pub id: i64,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_vars: Option<Value>,
    pub paused: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub paused_by: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub paused_at: i64,
    pub public: bool,
    pub archived: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Value>,
    pub team_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<Value>,
    #[serde(skip_serializing_if = "is_zero")]
    pub last_updated: i64,
}

pub fn pipeline(p: &db::Pipeline) -> Pipeline {
    let groups = Some(p.groups.clone()).filter(|g| g.as_array().is_some_and(|a| !a.is_empty()));
    Pipeline {
        id: p.id,
        name: p.name.clone(),
        instance_vars: p.instance_vars.clone(),
        paused: p.paused,
        paused_by: p.paused_by.clone().unwrap_or_default(),
        paused_at: p.paused_at.unwrap_or(0),
        public: p.public,
        archived: p.archived,
        groups,
        team_name: p.team_name.clone(),
        display: p.display.clone(),
        last_updated: p.last_updated,
    }
}

#[derive(Serialize)]
pub struct Team {
    pub id: i64,
    pub name: String,
    #[serde(skip_serializing_if = "db::TeamAuth::is_empty")]
    pub auth: db::TeamAuth,
}

pub fn team(t: &db::Team) -> Team {
    Team { id: t.id, name: t.name.clone(), auth: t.auth.clone() }
}

#[derive(Serialize, Clone)]
pub struct JobInput {
    pub name: String,
    pub resource: String,
    pub trigger: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub passed: Vec<String>,
}

/// One input of a job's next build, with what a get of it would use.
#[derive(Serialize, Clone)]
pub struct NextBuildInput {
    pub name: String,
    pub resource: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub source: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
    pub version: serde_json::Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

#[derive(Serialize, Clone)]
pub struct JobOutput {
    pub name: String,
    pub resource: String,
}

#[derive(Serialize)]
pub struct Job {
    pub id: i64,
    pub name: String,
    pub team_name: String,
    pub pipeline_id: i64,
    pub pipeline_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_instance_vars: Option<Value>,
    #[serde(skip_serializing_if = "is_false")]
    pub paused: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub paused_by: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub paused_at: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub has_new_inputs: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub first_logged_build_id: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub disable_manual_trigger: bool,
    pub next_build: Option<Build>,
    pub finished_build: Option<Build>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transition_build: Option<Build>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<JobInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<JobOutput>,
}

pub fn job(pipeline: &db::Pipeline, j: &db::Job, inputs: Vec<JobInput>, outputs: Vec<JobOutput>) -> Job {
    Job {
        id: j.id,
        name: j.name.clone(),
        team_name: pipeline.team_name.clone(),
        pipeline_id: pipeline.id,
        pipeline_name: pipeline.name.clone(),
        pipeline_instance_vars: pipeline.instance_vars.clone(),
        paused: j.paused,
        paused_by: j.paused_by.clone().unwrap_or_default(),
        paused_at: j.paused_at.unwrap_or(0),
        has_new_inputs: j.has_new_inputs,
        groups: j.groups.clone(),
        first_logged_build_id: j.first_logged_build_id,
        disable_manual_trigger: j.disable_manual_trigger,
        next_build: None,
        finished_build: None,
        transition_build: None,
        inputs,
        outputs,
    }
}

#[derive(Serialize)]
pub struct Resource {
    pub name: String,
    pub pipeline_id: i64,
    pub pipeline_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_instance_vars: Option<Value>,
    pub team_name: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub last_checked: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub icon: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_version: Option<Value>,
    #[serde(skip_serializing_if = "is_false")]
    pub pinned_in_config: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pin_comment: String,
    /// The latest check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
}

/// `r` with its latest check, found among `last_checks` (of its pipeline).
pub fn resource(pipeline: &db::Pipeline, r: &db::Resource, last_checks: &[db::Build]) -> Resource {
    let config_pin = r.config.get("version").filter(|v| v.is_object()).cloned();
    Resource {
        name: r.name.clone(),
        pipeline_id: pipeline.id,
        pipeline_name: pipeline.name.clone(),
        pipeline_instance_vars: pipeline.instance_vars.clone(),
        team_name: pipeline.team_name.clone(),
        type_: r.type_.clone(),
        last_checked: r.last_check_end,
        icon: r.config.get("icon").and_then(Value::as_str).unwrap_or_default().to_string(),
        pinned_in_config: config_pin.is_some(),
        pinned_version: config_pin.or_else(|| r.api_pinned_version.clone()),
        pin_comment: r.pin_comment.clone(),
        build: last_checks.iter().find(|b| b.resource_name.as_deref() == Some(r.name.as_str())).map(build),
    }
}

/// A resource type is presented as its configuration, plus when it was last checked.
pub fn resource_type(r: &db::ResourceType) -> Value {
    let mut config = r.config.clone();
    if let Value::Object(map) = &mut config
        && r.last_check_end > 0
    {
        map.insert("last_checked".into(), r.last_check_end.into());
    }
    config
}

#[derive(Serialize, Clone)]
pub struct RerunOf {
    pub id: i64,
    pub name: String,
}

#[derive(Serialize, Clone)]
pub struct Build {
    pub id: i64,
    pub team_name: String,
    pub name: String,
    pub status: String,
    pub api_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_instance_vars: Option<Value>,
    #[serde(skip_serializing_if = "is_zero")]
    pub start_time: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub end_time: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub reap_time: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub rerun_number: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<RerunOf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

pub fn build(b: &db::Build) -> Build {
    Build {
        id: b.id,
        team_name: b.team_name.clone(),
        name: b.name.clone(),
        status: b.status.as_str().to_string(),
        api_url: format!("/api/v1/builds/{}", b.id),
        comment: b.comment.clone(),
        job_name: b.job_name.clone(),
        resource_name: b.resource_name.clone().or_else(|| b.resource_type_name.clone()),
        pipeline_id: b.pipeline_id,
        pipeline_name: b.pipeline_name.clone(),
        pipeline_instance_vars: b.pipeline_instance_vars.clone(),
        start_time: b.start_time.unwrap_or(0),
        end_time: b.end_time.unwrap_or(0),
        reap_time: b.reap_time.unwrap_or(0),
        rerun_number: b.rerun_number,
        rerun_of: b.rerun_of.map(|id| RerunOf { id, name: b.rerun_of_name.clone().unwrap_or_default() }),
        created_by: b.created_by.clone(),
    }
}
