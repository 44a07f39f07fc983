//! For the span families' tests: a global tracer provider that keeps every
//! span it ends, installed once for the test process, and parents in traces
//! of their own so that each test finds its spans among everyone's.

use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, Value, global};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

/// An exporter that keeps every span it is given.
#[derive(Debug, Clone, Default)]
pub struct Collected(pub Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

fn collected() -> &'static Collected {
    static COLLECTED: OnceLock<Collected> = OnceLock::new();
    COLLECTED.get_or_init(|| {
        let collected = Collected::default();
        global::set_tracer_provider(SdkTracerProvider::builder().with_simple_exporter(collected.clone()).build());
        collected
    })
}

/// Makes the collecting provider the global one, if it is not yet.
pub fn install() {
    collected();
}

/// A sampled parent span (remote, as a stored or handed-on one is) in a
/// new trace.
pub fn parent() -> Context {
    install();
    let span = SpanContext::new(
        TraceId::from_bytes(rand::random()),
        SpanId::from_bytes(rand::random()),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    Context::new().with_remote_span_context(span)
}

/// A context without a span, with spans collected from here on.
pub fn no_parent() -> Context {
    install();
    Context::new()
}

/// The spans ended so far that `keep` keeps.
pub fn ended(keep: impl Fn(&SpanData) -> bool) -> Vec<SpanData> {
    collected().0.lock().unwrap().iter().filter(|span| keep(span)).cloned().collect()
}

/// The spans ended so far in `cx`'s trace.
pub fn ended_in(cx: &Context) -> Vec<SpanData> {
    let trace_id = cx.span().span_context().trace_id();
    ended(|span| span.span_context.trace_id() == trace_id)
}

/// The one span ended so far in `cx`'s trace.
pub fn one_ended_in(cx: &Context) -> SpanData {
    let mut spans = ended_in(cx);
    assert_eq!(spans.len(), 1, "{spans:?}");
    spans.remove(0)
}

/// `span`'s attributes as `key=value` text, in the order they were set.
pub fn attributes(span: &SpanData) -> Vec<String> {
    span.attributes.iter().map(|a| format!("{}={}", a.key, a.value)).collect()
}

/// The value of `span`'s attribute `key`.
pub fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes.iter().find(|a| a.key.as_str() == key).map(|a| a.value.clone())
}
