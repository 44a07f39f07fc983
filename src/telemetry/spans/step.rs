//! The spans inside a build: one per step that does work (`task unit`,
//! `get repo`, ...) with the events of its life, one per hook that runs
//! (`hook on_failure`), holding the hook's steps.

use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::{RunResult, tracer};
use crate::telemetry::semconv::*;

const INITIALIZING: &str = "step.initializing";
const STARTING: &str = "step.starting";
const PLACED: &str = "step.placed";
const IMAGE_READY: &str = "step.image_ready";
const FINISHED: &str = "step.finished";
const ERRORED: &str = "step.errored";
/// The `error.type` of a step that could not run.
const STEP_ERROR: &str = "step_error";

/// A step as its span describes it.
pub struct StepSpan<'a> {
    /// The step's id in the build's plan.
    pub plan_id: &'a str,
    /// `get`, `put`, `task`, `set_pipeline`, `load_var`.
    pub step_type: &'a str,
    pub name: &'a str,
    /// The resource a `get` or `put` uses.
    pub resource: Option<&'a str>,
    /// The build's page.
    pub url: Option<String>,
}

impl StepSpan<'_> {
    /// Starts the step's span under `parent` (the build, or a hook), as
    /// the step begins initializing.
    pub fn start(self, parent: &Context) -> Context {
        let mut attributes = vec![
            KeyValue::new(CICD_PIPELINE_TASK_NAME, self.name.to_string()),
            KeyValue::new(CICD_PIPELINE_TASK_RUN_ID, self.plan_id.to_string()),
            KeyValue::new(CONCOURSE_STEP_TYPE, self.step_type.to_string()),
        ];
        if let Some(resource) = self.resource {
            attributes.push(KeyValue::new(CONCOURSE_RESOURCE_NAME, resource.to_string()));
        }
        if let Some(url) = self.url {
            attributes.push(KeyValue::new(CICD_PIPELINE_TASK_RUN_URL_FULL, url));
        }
        let tracer = tracer();
        let mut span = tracer
            .span_builder(format!("{} {}", self.step_type, self.name))
            .with_kind(SpanKind::Internal)
            .with_attributes(attributes)
            .start_with_context(&tracer, parent);
        span.add_event(INITIALIZING, Vec::new());
        parent.with_span(span)
    }
}

/// The step's process is about to run.
pub fn step_starting(cx: &Context) {
    cx.span().add_event(STARTING, Vec::new());
}

/// The runtime placed the step's process on `worker`.
pub fn step_placed(cx: &Context, worker: &str) {
    cx.span().add_event(PLACED, vec![KeyValue::new(CICD_WORKER_NAME, worker.to_string())]);
}

/// The step's image is ready; `image` says which.
pub fn step_image_ready(cx: &Context, image: &str) {
    cx.span().add_event(IMAGE_READY, vec![KeyValue::new(CONTAINER_IMAGE_NAME, image.to_string())]);
}

/// How a step ended.
pub enum StepEnd<'a> {
    /// It ran to its end or was stopped; `exit_status` is its process's,
    /// when it ran one.
    Finished { result: RunResult, exit_status: Option<i32> },
    /// It could not run (an `error` result), for `message`.
    Errored { message: &'a str },
}

/// Ends the step's span (`cx`, as [`StepSpan::start`] gave it) with how
/// the step ended; any but success marks it failed.
pub fn end_step(cx: &Context, end: StepEnd<'_>) {
    let span = cx.span();
    match end {
        StepEnd::Errored { message } => {
            span.set_attribute(KeyValue::new(CICD_PIPELINE_TASK_RUN_RESULT, RunResult::Error.as_str()));
            span.add_event(ERRORED, vec![KeyValue::new(ERROR_TYPE, STEP_ERROR)]);
            span.set_status(Status::error(message.to_string()));
        }
        StepEnd::Finished { result, exit_status } => {
            span.set_attribute(KeyValue::new(CICD_PIPELINE_TASK_RUN_RESULT, result.as_str()));
            let attributes = exit_status.map(|code| vec![KeyValue::new(EXIT_STATUS, i64::from(code))]);
            span.add_event(FINISHED, attributes.unwrap_or_default());
            if result != RunResult::Success {
                span.set_attribute(KeyValue::new(ERROR_TYPE, result.as_str()));
            }
        }
    }
    span.end();
}

/// A hook that runs: `on_success`, `on_failure`, `on_error`, `on_abort`,
/// `ensure`.
pub struct HookSpan<'a> {
    pub kind: &'a str,
}

impl HookSpan<'_> {
    /// Starts the hook's span under `parent`, the span that holds the
    /// hooked step.
    pub fn start(self, parent: &Context) -> Context {
        let tracer = tracer();
        let span = tracer
            .span_builder(format!("hook {}", self.kind))
            .with_kind(SpanKind::Internal)
            .with_attributes([KeyValue::new(CONCOURSE_HOOK_TYPE, self.kind.to_string())])
            .start_with_context(&tracer, parent);
        parent.with_span(span)
    }
}

/// Ends the hook's span, marked failed with `error` when its steps could
/// not run.
pub fn end_hook(cx: &Context, error: Option<&str>) {
    let span = cx.span();
    if let Some(message) = error {
        span.set_status(Status::error(message.to_string()));
    }
    span.end();
}

#[cfg(test)]
mod tests {
    use opentelemetry_sdk::trace::SpanData;

    use super::*;
    use crate::telemetry::spans::testing::{self, attributes};

    fn events(span: &SpanData) -> Vec<(String, Vec<String>)> {
        let text = |a: &KeyValue| format!("{}={}", a.key, a.value);
        span.events.iter().map(|e| (e.name.to_string(), e.attributes.iter().map(text).collect())).collect()
    }

    fn task(parent: &Context) -> Context {
        StepSpan { plan_id: "p1", step_type: "task", name: "unit", resource: None, url: None }.start(parent)
    }

    #[test]
    fn a_step_span_tells_its_life_in_events() {
        let build = testing::parent();
        let step = StepSpan {
            plan_id: "p2",
            step_type: "get",
            name: "repo",
            resource: Some("git-repo"),
            url: Some("http://ci/builds/1".to_string()),
        }
        .start(&build);
        step_starting(&step);
        end_step(&step, StepEnd::Finished { result: RunResult::Success, exit_status: Some(0) });

        let span = testing::one_ended_in(&build);
        assert_eq!(span.name, "get repo");
        assert_eq!(span.span_kind, SpanKind::Internal);
        assert_eq!(span.parent_span_id, build.span().span_context().span_id());
        assert_eq!(
            attributes(&span),
            [
                "cicd.pipeline.task.name=repo",
                "cicd.pipeline.task.run.id=p2",
                "concourse.step.type=get",
                "concourse.resource.name=git-repo",
                "cicd.pipeline.task.run.url.full=http://ci/builds/1",
                "cicd.pipeline.task.run.result=success",
            ]
        );
        assert_eq!(
            events(&span),
            [
                ("step.initializing".to_string(), vec![]),
                ("step.starting".to_string(), vec![]),
                ("step.finished".to_string(), vec!["exit_status=0".to_string()]),
            ]
        );
        assert_eq!(span.status, Status::Unset);
    }

    #[test]
    fn a_step_that_did_not_succeed_says_why() {
        let build = testing::parent();
        end_step(&task(&build), StepEnd::Finished { result: RunResult::Cancellation, exit_status: None });
        let span = testing::one_ended_in(&build);
        assert_eq!(attributes(&span)[3..], ["cicd.pipeline.task.run.result=cancellation", "error.type=cancellation"]);
        assert_eq!(events(&span)[1], ("step.finished".to_string(), vec![]));
        assert_eq!(span.status, Status::Unset);

        let build = testing::parent();
        end_step(&task(&build), StepEnd::Errored { message: "no image" });
        let span = testing::one_ended_in(&build);
        assert_eq!(attributes(&span)[3..], ["cicd.pipeline.task.run.result=error"]);
        assert_eq!(events(&span)[1], ("step.errored".to_string(), vec!["error.type=step_error".to_string()]));
        assert_eq!(span.status, Status::error("no image"));
    }

    #[test]
    fn a_hook_holds_its_steps() {
        let build = testing::parent();
        let hook = HookSpan { kind: "on_failure" }.start(&build);
        end_step(&task(&hook), StepEnd::Finished { result: RunResult::Success, exit_status: Some(0) });
        end_hook(&hook, Some("no image"));

        let spans = testing::ended_in(&build);
        let hook = spans.iter().find(|s| s.name == "hook on_failure").expect("the hook's span");
        assert_eq!(hook.span_kind, SpanKind::Internal);
        assert_eq!(hook.parent_span_id, build.span().span_context().span_id());
        assert_eq!(attributes(hook), ["concourse.hook.type=on_failure"]);
        assert_eq!(hook.status, Status::error("no image"));
        let step = spans.iter().find(|s| s.name == "task unit").expect("the hook's step");
        assert_eq!(step.parent_span_id, hook.span_context.span_id());

        let build = testing::parent();
        end_hook(&HookSpan { kind: "ensure" }.start(&build), None);
        assert_eq!(testing::one_ended_in(&build).status, Status::Unset);
    }
}
