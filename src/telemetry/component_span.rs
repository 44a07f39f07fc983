//! Spans of background components (`scheduler.schedule_job`, `lidar.scan`),
//! recorded after the fact and only when the component did something, so
//! an idle tick leaves no trace behind.

use std::time::SystemTime;

use opentelemetry::trace::{Span, SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};

use super::TRACER_NAME;

/// A step of the work, timed while it ran, recorded as a child span.
pub struct WorkStep {
    pub name: &'static str,
    pub kind: SpanKind,
    pub started: SystemTime,
    pub ended: SystemTime,
    pub attributes: Vec<KeyValue>,
}

/// A root INTERNAL span named `name` from `started` until now, with `steps`
/// as its children.
pub fn record_component_work(name: &'static str, started: SystemTime, attributes: Vec<KeyValue>, steps: Vec<WorkStep>) {
    let tracer = global::tracer(TRACER_NAME);
    let span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Internal)
        .with_start_time(started)
        .with_attributes(attributes)
        .start_with_context(&tracer, &Context::new());
    let cx = Context::new().with_span(span);
    for step in steps {
        let mut child = tracer
            .span_builder(step.name)
            .with_kind(step.kind)
            .with_start_time(step.started)
            .with_attributes(step.attributes)
            .start_with_context(&tracer, &cx);
        child.end_with_timestamp(step.ended);
    }
    cx.span().end();
}
