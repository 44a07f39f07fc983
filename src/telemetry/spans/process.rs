//! The `runtime.process` span of a step's process, as the runtime that
//! started it sees it.

use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::{Span, SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::tracer;
use crate::telemetry::semconv::*;

/// A process a runtime started for a step.
pub struct RuntimeProcess {
    pub pid: i32,
    /// The program's file name (argv[0] without its directory), never its
    /// arguments.
    pub command: String,
}

impl RuntimeProcess {
    /// Starts the span under `parent`, the step span the process was handed
    /// (`TRACEPARENT`); without one, a span that records nothing.
    pub fn start(self, parent: &Context) -> ProcessSpan {
        if !parent.span().span_context().is_valid() {
            return ProcessSpan(None);
        }
        let tracer = tracer();
        let span = tracer
            .span_builder("runtime.process")
            .with_kind(SpanKind::Internal)
            .with_attributes([
                KeyValue::new(PROCESS_PID, i64::from(self.pid)),
                KeyValue::new(PROCESS_COMMAND, self.command),
            ])
            .start_with_context(&tracer, parent);
        ProcessSpan(Some(span))
    }
}

/// A started [`RuntimeProcess`]'s span.
pub struct ProcessSpan(Option<BoxedSpan>);

impl ProcessSpan {
    /// Ends the span with the process's exit code; `None` when it was
    /// stopped instead.
    pub fn end(self, exit_code: Option<i32>) {
        let Some(mut span) = self.0 else { return };
        match exit_code {
            Some(code) => span.set_attribute(KeyValue::new(PROCESS_EXIT_CODE, i64::from(code))),
            None => span.set_attribute(KeyValue::new(ERROR_TYPE, "stopped")),
        }
        span.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::spans::testing::{self, attributes};

    fn sh(pid: i32) -> RuntimeProcess {
        RuntimeProcess { pid, command: "sh".to_string() }
    }

    #[test]
    fn a_process_without_a_step_span_records_nothing() {
        assert!(sh(42).start(&testing::no_parent()).0.is_none());
    }

    #[test]
    fn a_process_span_hangs_under_its_step_until_the_exit() {
        let step = testing::parent();
        sh(42).start(&step).end(Some(3));
        let span = testing::one_ended_in(&step);
        assert_eq!(span.name, "runtime.process");
        assert_eq!(span.span_kind, SpanKind::Internal);
        assert_eq!(span.parent_span_id, step.span().span_context().span_id());
        assert_eq!(attributes(&span), ["process.pid=42", "process.command=sh", "process.exit.code=3"]);

        let step = testing::parent();
        sh(43).start(&step).end(None);
        assert_eq!(
            attributes(&testing::one_ended_in(&step)),
            ["process.pid=43", "process.command=sh", "error.type=stopped"]
        );
    }
}
