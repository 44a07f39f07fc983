//! Exemplars: the trace behind one observation. The OTel SDK does not fill
//! Prometheus exemplars, so the histograms here take them from the span
//! context the caller passes.

use opentelemetry::trace::SpanContext;
use prometheus_client::encoding::EncodeLabelSet;

/// The labels of an exemplar: which span the observation was made in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TraceExemplar {
    pub trace_id: String,
    pub span_id: String,
}

impl TraceExemplar {
    /// An exemplar for `span`, only when it is sampled: an unsampled trace id
    /// would point at a trace no backend has.
    pub fn of(span: &SpanContext) -> Option<TraceExemplar> {
        (span.is_valid() && span.is_sampled())
            .then(|| TraceExemplar { trace_id: span.trace_id().to_string(), span_id: span.span_id().to_string() })
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    fn span(flags: TraceFlags) -> SpanContext {
        SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            flags,
            false,
            TraceState::default(),
        )
    }

    #[test]
    fn sampled_spans_give_an_exemplar_with_their_ids() {
        let exemplar = TraceExemplar::of(&span(TraceFlags::SAMPLED)).unwrap();
        assert_eq!(exemplar.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(exemplar.span_id, "00f067aa0ba902b7");
    }

    #[test]
    fn unsampled_or_missing_spans_give_none() {
        assert_eq!(TraceExemplar::of(&span(TraceFlags::default())), None);
        assert_eq!(TraceExemplar::of(&SpanContext::empty_context()), None);
    }
}
