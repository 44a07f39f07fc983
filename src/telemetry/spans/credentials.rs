//! The `creds.lookup` span of one credential lookup: it names the var and
//! the manager, never the value; and the CLIENT spans of the manager's
//! requests to its store, under it.

use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer};
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
        CredsLookupSpan(Context::current_with_span(span))
    }
}

/// A started [`CredsLookup`]'s span.
pub struct CredsLookupSpan(Context);

impl CredsLookupSpan {
    /// The context whose requests to the store are this lookup's children.
    pub fn context(&self) -> Context {
        self.0.clone()
    }

    /// The span's identity, for the lookup's metric exemplar.
    pub fn span_context(&self) -> opentelemetry::trace::SpanContext {
        self.0.span().span_context().clone()
    }

    /// The manager answered; `found` is whether the var is defined.
    pub fn answered(self, found: bool) {
        let span = self.0.span();
        span.set_attribute(KeyValue::new(CONCOURSE_SECRET_FOUND, found));
        span.end();
    }

    /// The lookup failed with `message`.
    pub fn failed(self, message: &str) {
        let span = self.0.span();
        span.set_status(Status::error(message.to_string()));
        span.end();
    }
}

/// One request of a credential manager to its store (`GET` of a Vault
/// secret, a login), under the current lookup. `operation` names it
/// (`vault read`), never with a secret in it.
pub struct BackendRequest<'a> {
    pub operation: &'a str,
    pub method: &'static str,
    pub server_address: &'a str,
    pub server_port: Option<u16>,
    /// For a store spoken to by RPC (AWS): its `rpc.*` attributes.
    pub rpc: Option<Rpc<'a>>,
}

/// `rpc.system` (`aws-api`), `rpc.service` (`SSM`) and `rpc.method` (`GetParameter`).
pub struct Rpc<'a> {
    pub system: &'static str,
    pub service: &'a str,
    pub method: &'a str,
}

impl BackendRequest<'_> {
    pub fn start(self) -> BackendRequestSpan {
        let tracer = tracer();
        let mut attributes = vec![
            KeyValue::new(HTTP_REQUEST_METHOD, self.method),
            KeyValue::new(SERVER_ADDRESS, self.server_address.to_string()),
        ];
        if let Some(port) = self.server_port {
            attributes.push(KeyValue::new(SERVER_PORT, i64::from(port)));
        }
        if let Some(rpc) = self.rpc {
            attributes.extend([
                KeyValue::new(RPC_SYSTEM, rpc.system),
                KeyValue::new(RPC_SERVICE, rpc.service.to_string()),
                KeyValue::new(RPC_METHOD, rpc.method.to_string()),
            ]);
        }
        let span = tracer
            .span_builder(self.operation.to_string())
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&tracer, &Context::current());
        BackendRequestSpan(span)
    }
}

/// A started [`BackendRequest`]'s span.
pub struct BackendRequestSpan(opentelemetry::global::BoxedSpan);

impl BackendRequestSpan {
    /// The store answered with `status` (an HTTP status), or not at all.
    pub fn ended(mut self, status: Option<u16>, error: Option<&str>) {
        if let Some(status) = status {
            self.0.set_attribute(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
        }
        if let Some(error) = error {
            self.0.set_status(Status::error(error.to_string()));
        }
        self.0.end();
    }
}

#[cfg(test)]
mod tests {
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
    fn a_request_to_an_rpc_store_names_its_service_and_method() {
        let step = testing::parent();
        {
            let _current = step.clone().attach();
            let rpc = Rpc { system: "aws-api", service: "SSM", method: "GetParameter" };
            let request = BackendRequest {
                operation: "SSM.GetParameter",
                method: "POST",
                server_address: "ssm.eu-west-1.amazonaws.com",
                server_port: None,
                rpc: Some(rpc),
            };
            request.start().ended(Some(200), None);
        }
        let span = testing::one_ended_in(&step);
        assert_eq!(span.span_kind, SpanKind::Client);
        assert_eq!(
            attributes(&span),
            [
                "http.request.method=POST",
                "server.address=ssm.eu-west-1.amazonaws.com",
                "rpc.system=aws-api",
                "rpc.service=SSM",
                "rpc.method=GetParameter",
                "http.response.status_code=200",
            ]
        );
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
