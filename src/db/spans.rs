//! Spans of the database operations that matter to a trace (creating a
//! build, saving versions, taking a lock), not one per query. They are
//! children of whatever span is current and are skipped when none is, so
//! idle component ticks leave nothing behind.

use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};

use super::{Backend, Db};
use crate::telemetry::TRACER_NAME;

pub(super) struct OperationSpan(Option<global::BoxedSpan>);

impl Db {
    /// A CLIENT span named `name` for one operation on `collection`.
    pub(super) fn operation_span(
        &self,
        name: &'static str,
        operation: &'static str,
        collection: &'static str,
    ) -> OperationSpan {
        let parent = Context::current();
        if !parent.span().span_context().is_valid() {
            return OperationSpan(None);
        }
        let system = match self.backend() {
            Backend::Postgres => "postgresql",
            Backend::Sqlite => "sqlite",
        };
        let tracer = global::tracer(TRACER_NAME);
        let span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("db.system.name", system),
                KeyValue::new("db.operation.name", operation),
                KeyValue::new("db.collection.name", collection),
            ])
            .start_with_context(&tracer, &parent);
        OperationSpan(Some(span))
    }
}

impl OperationSpan {
    pub(super) fn set(&mut self, attribute: KeyValue) {
        if let Some(span) = &mut self.0 {
            span.set_attribute(attribute);
        }
    }

    /// Ends the span, marked failed when the operation was.
    pub(super) fn end<T, E: std::fmt::Display>(self, result: &Result<T, E>) {
        let Some(mut span) = self.0 else { return };
        if let Err(err) = result {
            span.set_attribute(KeyValue::new("error.type", "db_error"));
            span.set_status(Status::error(err.to_string()));
        }
        span.end();
    }
}
