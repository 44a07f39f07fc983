//! The `k8s.pod` span of a step's pod, the spans of its phases (placed
//! with the times Kubernetes recorded), and a CLIENT span per Kubernetes
//! API request, as the Kubernetes runtime sees them.

use std::time::SystemTime;

use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::{Span, SpanContext, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::tracer;
use crate::telemetry::semconv::*;

/// A step's pod.
pub struct StepPod<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
}

impl StepPod<'_> {
    /// Starts `k8s.pod {name}` under the step span `parent`; without one, a
    /// span that records nothing.
    pub fn start(self, parent: &Context) -> PodSpan {
        if !parent.span().span_context().is_valid() {
            return PodSpan { cx: None };
        }
        let tracer = tracer();
        let span = tracer
            .span_builder(format!("k8s.pod {}", self.name))
            .with_kind(SpanKind::Internal)
            .with_attributes([
                KeyValue::new(K8S_POD_NAME, self.name.to_string()),
                KeyValue::new(K8S_NAMESPACE_NAME, self.namespace.to_string()),
            ])
            .start_with_context(&tracer, parent);
        PodSpan { cx: Some(parent.with_span(span)) }
    }
}

/// One stretch of a pod's life, a child of `k8s.pod`.
pub enum PodStage<'a> {
    PvcBind { claim: &'a str },
    Schedule,
    ImagePull { container: &'a str, image: &'a str },
    InitContainer { name: &'a str, image: &'a str },
    SidecarStart { name: &'a str, image: &'a str },
    Run { container: &'a str, image: &'a str },
}

impl PodStage<'_> {
    fn name(&self) -> String {
        match self {
            PodStage::PvcBind { .. } => "k8s.pvc.bind".into(),
            PodStage::Schedule => "k8s.pod.schedule".into(),
            PodStage::ImagePull { container, .. } => format!("k8s.image.pull {container}"),
            PodStage::InitContainer { name, .. } => format!("k8s.init_container {name}"),
            PodStage::SidecarStart { name, .. } => format!("k8s.sidecar.start {name}"),
            PodStage::Run { .. } => "k8s.pod.run".into(),
        }
    }

    fn attributes(&self) -> Vec<KeyValue> {
        let container = |name: &str, image: &str| {
            vec![
                KeyValue::new(K8S_CONTAINER_NAME, name.to_string()),
                KeyValue::new(CONTAINER_IMAGE_NAME, image.to_string()),
            ]
        };
        match self {
            PodStage::PvcBind { claim } => vec![KeyValue::new(K8S_PERSISTENTVOLUMECLAIM_NAME, claim.to_string())],
            PodStage::Schedule => Vec::new(),
            PodStage::ImagePull { container: name, image }
            | PodStage::InitContainer { name, image }
            | PodStage::SidecarStart { name, image }
            | PodStage::Run { container: name, image } => container(name, image),
        }
    }
}

/// A stage that took from `start` to `end`; `failure` is Kubernetes'
/// reason when it failed (`OOMKilled`, `ErrImagePull`, ...).
pub struct PodInterval<'a> {
    pub stage: PodStage<'a>,
    pub start: SystemTime,
    pub end: SystemTime,
    pub failure: Option<&'a str>,
}

/// A started [`StepPod`]'s span.
pub struct PodSpan {
    /// The parent's context with the pod's span in it.
    cx: Option<Context>,
}

impl PodSpan {
    /// The pod's span, for the children and the startup metric's exemplar.
    pub fn context(&self) -> Context {
        self.cx.clone().unwrap_or_default()
    }

    pub fn span_context(&self) -> SpanContext {
        self.cx.as_ref().map(|cx| cx.span().span_context().clone()).unwrap_or(SpanContext::NONE)
    }

    /// The pod was seen in `phase` (`Pending`, `Running`, ...): event
    /// `pod.phase.{phase}`.
    pub fn phase(&self, phase: &str) {
        if let Some(cx) = &self.cx {
            cx.span().add_event(format!("pod.phase.{}", phase.to_ascii_lowercase()), Vec::new());
        }
    }

    /// Records a stage as a child span with the times Kubernetes gave.
    pub fn record(&self, interval: PodInterval) {
        let Some(cx) = &self.cx else { return };
        let tracer = tracer();
        let mut attributes = interval.stage.attributes();
        if let Some(reason) = interval.failure {
            attributes.push(KeyValue::new(K8S_CONTAINER_STATUS_LAST_TERMINATED_REASON, reason.to_string()));
            attributes.push(KeyValue::new(ERROR_TYPE, reason.to_string()));
        }
        let mut span = tracer
            .span_builder(interval.stage.name())
            .with_kind(SpanKind::Internal)
            .with_start_time(interval.start)
            .with_attributes(attributes)
            .start_with_context(&tracer, cx);
        if let Some(reason) = interval.failure {
            span.set_status(Status::error(reason.to_string()));
        }
        span.end_with_timestamp(interval.end.max(interval.start));
    }

    /// Ends the span: the node it ran on, its last phase, and the error
    /// that ended the step, if one did.
    pub fn end(self, node: Option<&str>, phase: Option<&str>, error: Option<&str>) {
        let Some(cx) = self.cx else { return };
        let span = cx.span();
        if let Some(node) = node {
            span.set_attribute(KeyValue::new(K8S_NODE_NAME, node.to_string()));
        }
        if let Some(phase) = phase {
            span.set_attribute(KeyValue::new(K8S_POD_STATUS_PHASE, phase.to_string()));
        }
        if let Some(error) = error {
            span.set_attribute(KeyValue::new(ERROR_TYPE, error.to_string()));
            span.set_status(Status::error(error.to_string()));
        }
        span.end();
    }
}

/// A request to the Kubernetes API.
pub struct K8sRequest<'a> {
    /// `create`, `get`, `delete`, `exec`, ...
    pub verb: &'a str,
    /// `pods`, `persistentvolumeclaims`, `pods/exec`, ...
    pub resource: &'a str,
}

impl K8sRequest<'_> {
    /// Starts the CLIENT span `{verb} {resource}` under `parent` (the pod's
    /// span); without a span there, one that records nothing.
    pub fn start(self, parent: &Context) -> K8sRequestSpan {
        if !parent.span().span_context().is_valid() {
            return K8sRequestSpan(None);
        }
        let tracer = tracer();
        let span = tracer
            .span_builder(format!("{} {}", self.verb, self.resource))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new(HTTP_REQUEST_METHOD, http_method(self.verb)),
                KeyValue::new(CONCOURSE_K8S_RESOURCE, self.resource.to_string()),
            ])
            .start_with_context(&tracer, parent);
        K8sRequestSpan(Some(span))
    }
}

fn http_method(verb: &str) -> &'static str {
    match verb {
        "create" | "exec" => "POST",
        "delete" => "DELETE",
        "patch" => "PATCH",
        "update" => "PUT",
        _ => "GET",
    }
}

pub struct K8sRequestSpan(Option<BoxedSpan>);

impl K8sRequestSpan {
    /// Ends the span with the response's status code (none when no answer
    /// came) and how many times the request was sent again.
    pub fn end(self, status_code: Option<u16>, retries: u32, error: Option<&str>) {
        let Some(mut span) = self.0 else { return };
        if let Some(code) = status_code {
            span.set_attribute(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(code)));
        }
        if retries > 0 {
            span.set_attribute(KeyValue::new(HTTP_REQUEST_RESEND_COUNT, i64::from(retries)));
        }
        if let Some(error) = error {
            span.set_attribute(KeyValue::new(ERROR_TYPE, error.to_string()));
            span.set_status(Status::error(error.to_string()));
        }
        span.end();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::telemetry::spans::testing::{self, attributes};

    #[test]
    fn a_pod_without_a_step_span_records_nothing() {
        let pod = StepPod { name: "p", namespace: "ns" }.start(&testing::no_parent());
        assert!(pod.cx.is_none());
        assert!(!pod.span_context().is_valid());
    }

    #[test]
    fn a_pods_stages_hang_under_it_with_kubernetes_times() {
        let step = testing::parent();
        let pod = StepPod { name: "step-1", namespace: "ci" }.start(&step);
        pod.phase("Pending");
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let end = start + Duration::from_secs(2);
        pod.record(PodInterval { stage: PodStage::Schedule, start, end, failure: None });
        let stage = PodStage::Run { container: "main", image: "busybox" };
        pod.record(PodInterval { stage, start: end, end: end + Duration::from_secs(1), failure: Some("OOMKilled") });
        K8sRequest { verb: "create", resource: "pods" }.start(&pod.context()).end(Some(201), 2, None);
        pod.end(Some("node-a"), Some("Running"), Some("OOMKilled"));

        let spans = testing::ended_in(&step);
        let named = |name: &str| spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name}: {spans:?}"));
        let pod_span = named("k8s.pod step-1");
        assert_eq!(pod_span.parent_span_id, step.span().span_context().span_id());
        assert_eq!(pod_span.events.iter().map(|e| e.name.to_string()).collect::<Vec<_>>(), ["pod.phase.pending"]);
        assert_eq!(
            attributes(pod_span),
            [
                "k8s.pod.name=step-1",
                "k8s.namespace.name=ci",
                "k8s.node.name=node-a",
                "k8s.pod.status.phase=Running",
                "error.type=OOMKilled"
            ]
        );
        let schedule = named("k8s.pod.schedule");
        assert_eq!(schedule.parent_span_id, pod_span.span_context.span_id());
        assert_eq!((schedule.start_time, schedule.end_time), (start, end));
        let run = named("k8s.pod.run");
        assert!(matches!(run.status, Status::Error { .. }));
        assert!(attributes(run).contains(&"k8s.container.status.last_terminated_reason=OOMKilled".to_string()));
        let request = named("create pods");
        assert_eq!(request.span_kind, SpanKind::Client);
        assert_eq!(
            attributes(request),
            [
                "http.request.method=POST",
                "concourse.k8s.resource=pods",
                "http.response.status_code=201",
                "http.request.resend_count=2"
            ]
        );
    }
}
