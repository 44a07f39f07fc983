//! The `creds.lookup` span of one credential lookup: it names the var and
//! the manager, never the value.

use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::{Span, SpanKind, Status, Tracer};
use opentelemetry::{Context, KeyValue};

use super::tracer;
use crate::telemetry::semconv::*;

/// A lookup of the var at `secret_path` in `manager` (`vault`, `dummy`, ...).
pub struct CredsLookup<'a> {
    pub manager: &'static str,
    pub secret_path: &'a str,
    pub cache_hit: bool,
}

impl CredsLookup<'_> {
    /// Starts the lookup's span under the current span (the step or check).
    pub fn start(self) -> CredsLookupSpan {
        let tracer = tracer();
        let span = tracer
            .span_builder("creds.lookup")
            .with_kind(SpanKind::Internal)
            .with_attributes([
                KeyValue::new(CONCOURSE_CREDS_MANAGER, self.manager),
                KeyValue::new(CONCOURSE_SECRET_PATH, self.secret_path.to_string()),
                KeyValue::new(CONCOURSE_CACHE_HIT, self.cache_hit),
            ])
            .start_with_context(&tracer, &Context::current());
        CredsLookupSpan(span)
    }
}

/// A started [`CredsLookup`]'s span.
pub struct CredsLookupSpan(BoxedSpan);

impl CredsLookupSpan {
    /// The manager answered; `found` is whether the var is defined.
    pub fn answered(mut self, found: bool) {
        self.0.set_attribute(KeyValue::new(CONCOURSE_SECRET_FOUND, found));
        self.0.end();
    }

    /// The lookup failed with `message`.
    pub fn failed(mut self, message: &str) {
        self.0.set_status(Status::error(message.to_string()));
        self.0.end();
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceContextExt;

    use super::*;
    use crate::telemetry::spans::testing::{self, attributes};

    fn lookup(step: &Context) -> CredsLookupSpan {
        let _current = step.clone().attach();
        CredsLookup { manager: "dummy", secret_path: "greeting", cache_hit: false }.start()
    }

    #[test]
    fn a_lookup_names_the_var_and_whether_it_was_found() {
        let step = testing::parent();
        lookup(&step).answered(true);
        let span = testing::one_ended_in(&step);
        assert_eq!(span.name, "creds.lookup");
        assert_eq!(span.span_kind, SpanKind::Internal);
        assert_eq!(span.parent_span_id, step.span().span_context().span_id());
        assert_eq!(
            attributes(&span),
            [
                "concourse.creds.manager=dummy",
                "concourse.secret.path=greeting",
                "concourse.cache.hit=false",
                "concourse.secret.found=true",
            ]
        );
        assert_eq!(span.status, Status::Unset);
    }

    #[test]
    fn a_failed_lookup_marks_its_span_failed() {
        let step = testing::parent();
        lookup(&step).failed("vault is sealed");
        let span = testing::one_ended_in(&step);
        assert_eq!(attributes(&span).len(), 3, "found or not is unknown");
        assert_eq!(span.status, Status::error("vault is sealed"));
    }
}
