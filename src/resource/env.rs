//! The resource-protocol environment: what a resource script learns about
//! the build it runs for, named as Concourse names it.

use serde_json::Value;

/// Facts about the build a resource script runs for. Absent facts are left
/// out of the environment, as Concourse leaves out zero values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildEnv {
    pub build_id: Option<i64>,
    pub build_name: Option<String>,
    pub team_name: Option<String>,
    pub job_name: Option<String>,
    pub pipeline_name: Option<String>,
    /// The pipeline's instance vars, a JSON object.
    pub pipeline_instance_vars: Option<Value>,
    pub external_url: Option<String>,
    pub created_by: Option<String>,
}

impl BuildEnv {
    /// `BUILD_ID`, `BUILD_NAME`, `BUILD_TEAM_NAME`, `BUILD_JOB_NAME`,
    /// `BUILD_PIPELINE_NAME`, `BUILD_PIPELINE_INSTANCE_VARS`,
    /// `ATC_EXTERNAL_URL`, `BUILD_URL`, `BUILD_URL_SHORT`, `BUILD_CREATED_BY`.
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        let mut push = |key: &str, value: String| env.push((key.to_string(), value));
        if let Some(id) = self.build_id {
            push("BUILD_ID", id.to_string());
        }
        let non_empty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        if let Some(name) = non_empty(&self.build_name) {
            push("BUILD_NAME", name);
        }
        if let Some(team) = non_empty(&self.team_name) {
            push("BUILD_TEAM_NAME", team);
        }
        if let Some(job) = non_empty(&self.job_name) {
            push("BUILD_JOB_NAME", job);
        }
        if let Some(pipeline) = non_empty(&self.pipeline_name) {
            push("BUILD_PIPELINE_NAME", pipeline);
        }
        if let Some(vars) = &self.pipeline_instance_vars {
            push("BUILD_PIPELINE_INSTANCE_VARS", vars.to_string());
        }
        if let Some(url) = non_empty(&self.external_url) {
            push("ATC_EXTERNAL_URL", url.clone());
            if let (Some(id), Some(long)) = (self.build_id, self.build_url()) {
                push("BUILD_URL", long);
                push("BUILD_URL_SHORT", format!("{url}/builds/{id}"));
            }
        }
        if let Some(created_by) = non_empty(&self.created_by) {
            push("BUILD_CREATED_BY", created_by);
        }
        env
    }

    /// The build's page: under its job for a job's build, else by id.
    pub fn build_url(&self) -> Option<String> {
        let non_empty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        let url = non_empty(&self.external_url)?;
        let id = self.build_id?;
        Some(
            match (
                non_empty(&self.team_name),
                non_empty(&self.pipeline_name),
                non_empty(&self.job_name),
                non_empty(&self.build_name),
            ) {
                (Some(team), Some(pipeline), Some(job), Some(build)) => {
                    format!("{url}/teams/{team}/pipelines/{pipeline}/jobs/{job}/builds/{build}{}", self.query())
                }
                _ => format!("{url}/builds/{id}"),
            },
        )
    }

    /// `?vars.KEY=JSON&...`, nested objects flattened to dotted keys, sorted.
    fn query(&self) -> String {
        let mut pairs = Vec::new();
        if let Some(Value::Object(vars)) = &self.pipeline_instance_vars {
            flatten("vars", vars, &mut pairs);
        }
        if pairs.is_empty() {
            return String::new();
        }
        pairs.sort();
        format!("?{}", serde_urlencoded::to_string(&pairs).unwrap_or_default())
    }
}

fn flatten(prefix: &str, object: &serde_json::Map<String, Value>, pairs: &mut Vec<(String, String)>) {
    for (key, value) in object {
        let path = format!("{prefix}.{key}");
        match value {
            Value::Object(nested) if !nested.is_empty() => flatten(&path, nested, pairs),
            other => pairs.push((path, other.to_string())),
        }
    }
}
