//! Trace context across process boundaries: W3C Trace Context and Baggage
//! in HTTP headers, and the OpenTelemetry environment-variable carrier
//! (`TRACEPARENT`, `TRACESTATE`, `BAGGAGE`) for processes atc starts.

use std::collections::HashMap;

use axum::http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::global;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

/// Makes W3C Trace Context + Baggage the global propagator.
pub fn install_global_propagator() {
    global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
}

/// The caller's context from request headers (`traceparent`, `baggage`).
pub fn extract_from_headers(headers: &HeaderMap) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)))
}

/// Environment variables that hand `cx` to a child process: `TRACEPARENT`
/// (and `TRACESTATE`, `BAGGAGE` when there is any). Empty when `cx` has no
/// valid span.
pub fn environment_for(cx: &Context) -> Vec<(String, String)> {
    let mut carrier = HashMap::new();
    global::get_text_map_propagator(|propagator| propagator.inject_context(cx, &mut carrier));
    let mut vars: Vec<(String, String)> =
        carrier.into_iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_ascii_uppercase(), v)).collect();
    vars.sort();
    vars
}

/// The context a process environment hands over (`TRACEPARENT`,
/// `TRACESTATE`), as [`environment_for`] wrote it; empty without one.
pub fn context_from_environment(env: &[(String, String)]) -> Context {
    let carrier: HashMap<String, String> = env
        .iter()
        .filter(|(key, _)| key == "TRACEPARENT" || key == "TRACESTATE")
        .map(|(key, value)| (key.to_ascii_lowercase(), value.clone()))
        .collect();
    TraceContextPropagator::new().extract(&carrier)
}

/// `cx`'s span as text to keep (a W3C `traceparent`, plus `tracestate`
/// when set), so work that outlives this process stays in its trace.
/// `None` when `cx` has no valid span.
pub fn stored_context(cx: &Context) -> Option<String> {
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    carrier.contains_key("traceparent").then(|| serde_json::to_string(&carrier).unwrap_or_default())
}

/// The context [`stored_context`] kept, its span remote. Text that is not
/// one (a damaged row) gives an empty context, so the work starts a trace
/// of its own: losing a link is no reason to fail a build, but it is said.
pub fn restored_context(stored: &str) -> Context {
    let carrier: HashMap<String, String> = match serde_json::from_str(stored) {
        Ok(carrier) => carrier,
        Err(err) => {
            tracing::warn!(error = %err, "a stored trace context is unreadable; the work it links starts a new trace");
            HashMap::new()
        }
    };
    TraceContextPropagator::new().extract(&carrier)
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceContextExt;

    use super::*;

    #[test]
    fn a_traceparent_header_round_trips_into_the_environment_carrier() {
        install_global_propagator();
        let mut headers = HeaderMap::new();
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert("traceparent", traceparent.parse().unwrap());
        let cx = extract_from_headers(&headers);
        assert_eq!(cx.span().span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(cx.span().span_context().is_remote());
        assert_eq!(environment_for(&cx), vec![("TRACEPARENT".to_string(), traceparent.to_string())]);
        assert!(environment_for(&Context::new()).is_empty());
        let handed_over = context_from_environment(&environment_for(&cx));
        assert_eq!(handed_over.span().span_context(), cx.span().span_context());

        let stored = stored_context(&cx).expect("a valid span is stored");
        let restored = restored_context(&stored);
        assert_eq!(restored.span().span_context(), cx.span().span_context());
        assert_eq!(stored_context(&Context::new()), None);
        assert!(!restored_context("not json").span().span_context().is_valid());
    }
}
