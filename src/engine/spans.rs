//! A build's trace: one span for the build (or the check), one per step
//! that does work, one per hook that runs. Steps hand their span to the
//! processes they start (`TRACEPARENT`). Names and attributes are those of
//! observability.md (`cicd.*` semantic conventions, `concourse.*` facts).

use opentelemetry::trace::{Link, Span, SpanContext, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};

use super::exec::Outcome;
use super::state::BuildInfo;
use crate::telemetry::TRACER_NAME;

/// What a build span says about the build.
pub struct BuildSpanFacts<'a> {
    pub info: &'a BuildInfo,
    /// The check's resource (a check build), else `None`.
    pub resource: Option<(&'a str, &'a str)>,
    pub url: Option<String>,
}

/// Starts the build's span: a child of `parent` when it has a span (the
/// API request that created the build), else a root; linked to `links`
/// (the spans behind its triggering versions, the build a rerun repeats).
pub fn start_build(facts: &BuildSpanFacts<'_>, parent: &Context, links: Vec<SpanContext>) -> Context {
    let info = facts.info;
    let (name, pipeline_run) = match (&facts.resource, &info.pipeline_name, &info.job_name) {
        (Some((resource, _)), _, _) => (format!("check {resource}"), None),
        (None, Some(pipeline), Some(job)) => (format!("build {pipeline}/{job}"), Some(format!("{pipeline}/{job}"))),
        _ => ("build one-off".to_string(), None),
    };
    let mut attributes = vec![
        KeyValue::new("cicd.pipeline.run.id", info.id),
        KeyValue::new("cicd.pipeline.action.name", "BUILD"),
        KeyValue::new("concourse.team.name", info.team_name.clone()),
        KeyValue::new("concourse.build.name", info.name.clone()),
    ];
    if let Some(pipeline_run) = pipeline_run {
        attributes.push(KeyValue::new("cicd.pipeline.name", pipeline_run));
    }
    if let Some(pipeline) = &info.pipeline_name {
        attributes.push(KeyValue::new("concourse.pipeline.name", pipeline.clone()));
    }
    if let Some(job) = &info.job_name {
        attributes.push(KeyValue::new("concourse.job.name", job.clone()));
    }
    if let Some((resource, resource_type)) = facts.resource {
        attributes.push(KeyValue::new("concourse.resource.name", resource.to_string()));
        attributes.push(KeyValue::new("concourse.resource.type", resource_type.to_string()));
    }
    if let Some(url) = &facts.url {
        attributes.push(KeyValue::new("cicd.pipeline.run.url.full", url.clone()));
    }
    let has_parent = parent.span().span_context().is_valid();
    let tracer = global::tracer(TRACER_NAME);
    let builder = tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .with_links(links.into_iter().map(Link::with_context).collect());
    let root = Context::new();
    let span = builder.start_with_context(&tracer, if has_parent { parent } else { &root });
    Context::new().with_span(span)
}

/// `cicd.pipeline.result` of a final build status.
fn build_result(status: &str, timed_out: bool) -> &'static str {
    match status {
        "succeeded" => "success",
        "failed" if timed_out => "timeout",
        "failed" => "failure",
        "aborted" => "cancellation",
        _ => "error",
    }
}

/// Ends the build's span with its result.
pub fn end_build(cx: &Context, status: &str, timed_out: bool) {
    let span = cx.span();
    let result = build_result(status, timed_out);
    span.set_attribute(KeyValue::new("cicd.pipeline.result", result));
    if result != "success" {
        span.set_attribute(KeyValue::new("error.type", result));
        span.set_status(Status::error(format!("build {status}")));
    }
    span.end();
}

/// What a step span says about its step.
pub struct StepSpanFacts<'a> {
    pub plan_id: &'a str,
    /// `get`, `put`, `task`, `set_pipeline`, `load_var`.
    pub step_type: &'a str,
    pub name: &'a str,
    pub resource: Option<&'a str>,
    pub url: Option<String>,
}

/// Starts a step's span under `parent` (the build, or a hook).
pub fn start_step(parent: &Context, facts: &StepSpanFacts<'_>) -> Context {
    let mut attributes = vec![
        KeyValue::new("cicd.pipeline.task.name", facts.name.to_string()),
        KeyValue::new("cicd.pipeline.task.run.id", facts.plan_id.to_string()),
        KeyValue::new("concourse.step.type", facts.step_type.to_string()),
    ];
    if let Some(resource) = facts.resource {
        attributes.push(KeyValue::new("concourse.resource.name", resource.to_string()));
    }
    if let Some(url) = &facts.url {
        attributes.push(KeyValue::new("cicd.pipeline.task.run.url.full", url.clone()));
    }
    let tracer = global::tracer(TRACER_NAME);
    let mut span = tracer
        .span_builder(format!("{} {}", facts.step_type, facts.name))
        .with_kind(SpanKind::Internal)
        .with_attributes(attributes)
        .start_with_context(&tracer, parent);
    span.add_event("step.initializing", Vec::new());
    parent.with_span(span)
}

/// The step's process is about to run.
pub fn step_starting(cx: &Context) {
    cx.span().add_event("step.starting", Vec::new());
}

/// Ends a step's span with its outcome (and the exit status of its
/// process, when it ran one).
pub fn end_step(cx: &Context, outcome: &Outcome, exit_status: Option<i32>, timed_out: bool) {
    let span = cx.span();
    let result = match outcome {
        Outcome::Succeeded => "success",
        Outcome::Failed if timed_out => "timeout",
        Outcome::Failed => "failure",
        Outcome::Errored(_) => "error",
        Outcome::Interrupted => "cancellation",
    };
    span.set_attribute(KeyValue::new("cicd.pipeline.task.run.result", result));
    match outcome {
        Outcome::Errored(message) => {
            span.add_event("step.errored", vec![KeyValue::new("error.type", "step_error")]);
            span.set_status(Status::error(message.clone()));
        }
        _ => {
            let attributes = exit_status.map(|code| vec![KeyValue::new("exit_status", i64::from(code))]);
            span.add_event("step.finished", attributes.unwrap_or_default());
            if *outcome != Outcome::Succeeded {
                span.set_attribute(KeyValue::new("error.type", result));
            }
        }
    }
    span.end();
}

/// Starts the span of a hook that runs (`on_success`, `ensure`, ...).
pub fn start_hook(parent: &Context, kind: &str) -> Context {
    let tracer = global::tracer(TRACER_NAME);
    let span = tracer
        .span_builder(format!("hook {kind}"))
        .with_kind(SpanKind::Internal)
        .with_attributes([KeyValue::new("concourse.hook.type", kind.to_string())])
        .start_with_context(&tracer, parent);
    parent.with_span(span)
}

pub fn end_hook(cx: &Context, outcome: &Outcome) {
    let span = cx.span();
    if let Outcome::Errored(message) = outcome {
        span.set_status(Status::error(message.clone()));
    }
    span.end();
}

#[cfg(test)]
mod tests {
    use super::build_result;

    #[test]
    fn final_statuses_map_to_cicd_results() {
        assert_eq!(build_result("succeeded", false), "success");
        assert_eq!(build_result("failed", false), "failure");
        assert_eq!(build_result("failed", true), "timeout");
        assert_eq!(build_result("errored", false), "error");
        assert_eq!(build_result("aborted", false), "cancellation");
    }
}
