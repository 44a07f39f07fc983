//! The span of a build (`build {pipeline}/{job}`, `build one-off`) or a
//! check (`check {resource}`): a SERVER span, the root of its steps.

use opentelemetry::trace::{Link, SpanContext, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::{RunResult, tracer};
use crate::telemetry::semconv::*;

/// A build as its span describes it.
pub struct BuildSpan<'a> {
    /// The build's id (`cicd.pipeline.run.id`).
    pub id: i64,
    pub team: &'a str,
    /// The build's name within its job (`1`, `2.1`).
    pub name: &'a str,
    pub pipeline: Option<&'a str>,
    pub job: Option<&'a str>,
    /// The resource a check build checks; `None` for other builds.
    pub checked_resource: Option<CheckedResource<'a>>,
    /// The build's page.
    pub url: Option<String>,
}

pub struct CheckedResource<'a> {
    pub name: &'a str,
    pub type_: &'a str,
}

impl BuildSpan<'_> {
    /// Starts the span: a child of `parent` when it has a span (the API
    /// request that created the build), else a root; linked to `links`
    /// (the spans behind its triggering versions, the build a rerun repeats).
    pub fn start(self, parent: &Context, links: Vec<SpanContext>) -> Context {
        let (name, pipeline_run) = match (&self.checked_resource, self.pipeline, self.job) {
            (Some(resource), _, _) => (format!("check {}", resource.name), None),
            (None, Some(pipeline), Some(job)) => (format!("build {pipeline}/{job}"), Some(format!("{pipeline}/{job}"))),
            _ => ("build one-off".to_string(), None),
        };
        let mut attributes = vec![
            KeyValue::new(CICD_PIPELINE_RUN_ID, self.id),
            KeyValue::new(CICD_PIPELINE_ACTION_NAME, "BUILD"),
            KeyValue::new(CONCOURSE_TEAM_NAME, self.team.to_string()),
            KeyValue::new(CONCOURSE_BUILD_NAME, self.name.to_string()),
        ];
        if let Some(pipeline_run) = pipeline_run {
            attributes.push(KeyValue::new(CICD_PIPELINE_NAME, pipeline_run));
        }
        if let Some(pipeline) = self.pipeline {
            attributes.push(KeyValue::new(CONCOURSE_PIPELINE_NAME, pipeline.to_string()));
        }
        if let Some(job) = self.job {
            attributes.push(KeyValue::new(CONCOURSE_JOB_NAME, job.to_string()));
        }
        if let Some(resource) = &self.checked_resource {
            attributes.push(KeyValue::new(CONCOURSE_RESOURCE_NAME, resource.name.to_string()));
            attributes.push(KeyValue::new(CONCOURSE_RESOURCE_TYPE, resource.type_.to_string()));
        }
        if let Some(url) = self.url {
            attributes.push(KeyValue::new(CICD_PIPELINE_RUN_URL_FULL, url));
        }
        let has_parent = parent.span().span_context().is_valid();
        let tracer = tracer();
        let builder = tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .with_links(links.into_iter().map(Link::with_context).collect());
        let root = Context::new();
        let span = builder.start_with_context(&tracer, if has_parent { parent } else { &root });
        Context::new().with_span(span)
    }
}

/// How a build ended.
pub struct BuildEnd<'a> {
    pub result: RunResult,
    /// Concourse's final status (`failed`, `aborted`, ...), for the
    /// span's error message.
    pub status: &'a str,
}

/// Ends the build's span (`cx`, as [`BuildSpan::start`] gave it) with its
/// result; any but success marks it failed.
pub fn end_build(cx: &Context, end: BuildEnd<'_>) {
    let span = cx.span();
    let result = end.result.as_str();
    span.set_attribute(KeyValue::new(CICD_PIPELINE_RESULT, result));
    if end.result != RunResult::Success {
        span.set_attribute(KeyValue::new(ERROR_TYPE, result));
        span.set_status(Status::error(format!("build {}", end.status)));
    }
    span.end();
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::SpanId;

    use super::*;
    use crate::telemetry::spans::testing::{self, attributes};

    fn job_build(id: i64) -> BuildSpan<'static> {
        BuildSpan {
            id,
            team: "main",
            name: "7",
            pipeline: Some("p"),
            job: Some("j"),
            checked_resource: None,
            url: Some("http://ci/teams/main/pipelines/p/jobs/j/builds/7".to_string()),
        }
    }

    #[test]
    fn a_build_is_a_server_span_under_the_request_that_created_it() {
        let request = testing::parent();
        let cx = job_build(1).start(&request, Vec::new());
        end_build(&cx, BuildEnd { result: RunResult::Timeout, status: "failed" });

        let span = testing::one_ended_in(&request);
        assert_eq!(span.name, "build p/j");
        assert_eq!(span.span_kind, SpanKind::Server);
        assert_eq!(span.parent_span_id, request.span().span_context().span_id());
        assert_eq!(
            attributes(&span),
            [
                "cicd.pipeline.run.id=1",
                "cicd.pipeline.action.name=BUILD",
                "concourse.team.name=main",
                "concourse.build.name=7",
                "cicd.pipeline.name=p/j",
                "concourse.pipeline.name=p",
                "concourse.job.name=j",
                "cicd.pipeline.run.url.full=http://ci/teams/main/pipelines/p/jobs/j/builds/7",
                "cicd.pipeline.result=timeout",
                "error.type=timeout",
            ]
        );
        assert_eq!(span.status, Status::error("build failed"));
    }

    #[test]
    fn without_a_request_a_build_is_a_root_linked_to_its_sources() {
        let source = testing::parent();
        let one_off = BuildSpan { pipeline: None, job: None, url: None, ..job_build(2) };
        let cx = one_off.start(&testing::no_parent(), vec![source.span().span_context().clone()]);
        end_build(&cx, BuildEnd { result: RunResult::Success, status: "succeeded" });

        let span = testing::one_ended_in(&cx);
        assert_eq!(span.name, "build one-off");
        assert_eq!(span.parent_span_id, SpanId::INVALID);
        let links: Vec<_> = span.links.iter().map(|link| link.span_context.clone()).collect();
        assert_eq!(links, [source.span().span_context().clone()]);
        assert_eq!(
            attributes(&span),
            [
                "cicd.pipeline.run.id=2",
                "cicd.pipeline.action.name=BUILD",
                "concourse.team.name=main",
                "concourse.build.name=7",
                "cicd.pipeline.result=success",
            ]
        );
        assert_eq!(span.status, Status::Unset);
    }

    #[test]
    fn a_check_is_named_after_its_resource() {
        let api = testing::parent();
        let checked_resource = Some(CheckedResource { name: "r", type_: "git" });
        let check = BuildSpan { job: None, url: None, checked_resource, ..job_build(3) };
        end_build(&check.start(&api, Vec::new()), BuildEnd { result: RunResult::Error, status: "errored" });

        let span = testing::one_ended_in(&api);
        assert_eq!(span.name, "check r");
        assert_eq!(
            attributes(&span),
            [
                "cicd.pipeline.run.id=3",
                "cicd.pipeline.action.name=BUILD",
                "concourse.team.name=main",
                "concourse.build.name=7",
                "concourse.pipeline.name=p",
                "concourse.resource.name=r",
                "concourse.resource.type=git",
                "cicd.pipeline.result=error",
                "error.type=error",
            ]
        );
        assert_eq!(span.status, Status::error("build errored"));
    }
}
