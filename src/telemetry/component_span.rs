//! Spans of background components (`scheduler.schedule_job`, `lidar.scan`),
//! recorded after the fact and only when the component did something, so
//! an idle tick leaves no trace behind.

use std::time::SystemTime;

use opentelemetry::trace::{Span, SpanKind, Tracer};
use opentelemetry::{Context, KeyValue, global};

use super::TRACER_NAME;

/// A root INTERNAL span named `name` from `started` until now.
pub fn record_component_work(name: &'static str, started: SystemTime, attributes: Vec<KeyValue>) {
    let tracer = global::tracer(TRACER_NAME);
    let mut span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Internal)
        .with_start_time(started)
        .with_attributes(attributes)
        .start_with_context(&tracer, &Context::new());
    span.end();
}
