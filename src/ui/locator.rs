//! Which pipeline a page is about, and the page and API URLs under it.
//! Instances of a pipeline (`fly set-pipeline --instance-var`) share its
//! name; their instance vars travel in the query string (`vars=JSON`,
//! `vars.KEY=JSON`), on Concourse's pages as in its API.

use serde_json::Value;

use super::api::segment;
use crate::api::instance_vars::form_pairs;

#[derive(Debug, Clone)]
pub struct PipelineLocator {
    pub team: String,
    pub name: String,
    /// The `vars` pairs, encoded, or empty for a pipeline without them.
    vars_query: String,
}

impl PipelineLocator {
    /// The pipeline of a page's path, with the instance vars of its query.
    pub fn from_page(team: &str, name: &str, query: Option<&str>) -> PipelineLocator {
        let vars: Vec<(String, String)> = form_pairs(query.unwrap_or(""))
            .into_iter()
            .filter(|(key, _)| key == "vars" || key.starts_with("vars."))
            .collect();
        PipelineLocator {
            team: team.to_string(),
            name: name.to_string(),
            vars_query: serde_urlencoded::to_string(&vars).unwrap_or_default(),
        }
    }

    /// A pipeline as the API names it.
    pub fn new(team: &str, name: &str, instance_vars: Option<&Value>) -> PipelineLocator {
        let vars_query = instance_vars
            .filter(|vars| vars.as_object().is_some_and(|map| !map.is_empty()))
            .map(|vars| serde_urlencoded::to_string([("vars", vars.to_string())]).unwrap_or_default())
            .unwrap_or_default();
        PipelineLocator { team: team.to_string(), name: name.to_string(), vars_query }
    }

    fn under(&self, root: &str, suffix: &str) -> String {
        let base = format!("{root}/teams/{}/pipelines/{}{suffix}", segment(&self.team), segment(&self.name));
        with_query(base, &self.vars_query)
    }

    /// An API route under the pipeline; `suffix` may carry a query.
    pub fn api(&self, suffix: &str) -> String {
        self.under("/api/v1", suffix)
    }

    /// A page under the pipeline.
    pub fn page(&self, suffix: &str) -> String {
        self.under("", suffix)
    }

    pub fn job_api(&self, job: &str, suffix: &str) -> String {
        self.api(&format!("/jobs/{}{suffix}", segment(job)))
    }

    pub fn job_page(&self, job: &str, suffix: &str) -> String {
        self.page(&format!("/jobs/{}{suffix}", segment(job)))
    }

    pub fn resource_api(&self, resource: &str, suffix: &str) -> String {
        self.api(&format!("/resources/{}{suffix}", segment(resource)))
    }

    pub fn resource_page(&self, resource: &str) -> String {
        self.page(&format!("/resources/{}", segment(resource)))
    }

    /// The pipeline's name with its instance vars, as people read it.
    pub fn title(&self) -> String {
        let vars: Vec<String> = form_pairs(&self.vars_query).into_iter().map(|(_, value)| value).collect();
        if vars.is_empty() { self.name.clone() } else { format!("{} {}", self.name, vars.join(" ")) }
    }
}

/// `url` with `query` added to whatever query it has.
pub fn with_query(url: String, query: &str) -> String {
    match (query.is_empty(), url.contains('?')) {
        (true, _) => url,
        (false, true) => format!("{url}&{query}"),
        (false, false) => format!("{url}?{query}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_vars_follow_every_url_of_the_pipeline() {
        let vars = serde_json::json!({ "branch": "feature/x" });
        let locator = PipelineLocator::new("main", "my app", Some(&vars));
        let encoded = "vars=%7B%22branch%22%3A%22feature%2Fx%22%7D";
        assert_eq!(locator.page(""), format!("/teams/main/pipelines/my%20app?{encoded}"));
        assert_eq!(
            locator.job_api("unit", "/builds?limit=5"),
            format!("/api/v1/teams/main/pipelines/my%20app/jobs/unit/builds?limit=5&{encoded}")
        );
        let from_page = PipelineLocator::from_page("main", "my app", Some(&format!("group=g&{encoded}")));
        assert_eq!(from_page.page(""), locator.page(""));
        assert_eq!(locator.title(), r#"my app {"branch":"feature/x"}"#);
        let plain = PipelineLocator::new("main", "p", None);
        assert_eq!(plain.resource_page("r"), "/teams/main/pipelines/p/resources/r");
        assert_eq!(with_query(plain.page(""), "group=a"), "/teams/main/pipelines/p?group=a");
    }
}
