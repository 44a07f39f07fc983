//! Spans of background components (`scheduler.schedule_job`, `lidar.scan`),
//! recorded after the fact and only when the component did something, so
//! an idle tick leaves no trace behind.

use std::time::SystemTime;

use opentelemetry::trace::{Span, SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::{DbOperation, DbSystem, tracer};
use crate::telemetry::semconv::*;

/// The scheduler's pass over one job that created or started a build.
pub struct SchedulingPass<'a> {
    pub pipeline: &'a str,
    pub job: &'a str,
    pub started: SystemTime,
    pub inputs_resolved: InputResolution,
}

/// When resolving a job's inputs began and ended, on which database.
pub struct InputResolution {
    pub system: DbSystem,
    pub started: SystemTime,
    pub ended: SystemTime,
}

impl SchedulingPass<'_> {
    /// A root `scheduler.schedule_job` span from `started` until now, the
    /// input resolution as its database child.
    pub fn record(self) {
        let resolution = self.inputs_resolved;
        let (name, mut attributes) = DbOperation::ResolveJobInputs.describe(resolution.system);
        attributes.push(KeyValue::new(CONCOURSE_JOB_NAME, self.job.to_string()));
        let resolved =
            WorkStep { name, kind: SpanKind::Client, started: resolution.started, ended: resolution.ended, attributes };
        let attributes = vec![
            KeyValue::new(CONCOURSE_PIPELINE_NAME, self.pipeline.to_string()),
            KeyValue::new(CONCOURSE_JOB_NAME, self.job.to_string()),
        ];
        record_component_work("scheduler.schedule_job", self.started, attributes, vec![resolved]);
    }
}

/// The checker's scan that started checks.
pub struct LidarScan {
    pub started: SystemTime,
    pub checks_started: u64,
}

impl LidarScan {
    /// A root `lidar.scan` span from `started` until now.
    pub fn record(self) {
        let attributes = vec![KeyValue::new(CONCOURSE_CHECKS_STARTED, self.checks_started as i64)];
        record_component_work("lidar.scan", self.started, attributes, Vec::new());
    }
}

/// The collector's pass that stopped steps of builds that ended (on
/// Kubernetes, deleted their pods).
pub struct ReaperPass {
    pub started: SystemTime,
    pub steps_stopped: u64,
}

impl ReaperPass {
    /// A root `collector.reap` span from `started` until now.
    pub fn record(self) {
        let attributes = vec![KeyValue::new(CONCOURSE_STEPS_STOPPED, self.steps_stopped as i64)];
        record_component_work("collector.reap", self.started, attributes, Vec::new());
    }
}

/// A step of the work, timed while it ran, recorded as a child span.
struct WorkStep {
    name: &'static str,
    kind: SpanKind,
    started: SystemTime,
    ended: SystemTime,
    attributes: Vec<KeyValue>,
}

/// A root INTERNAL span named `name` from `started` until now, with `steps`
/// as its children.
fn record_component_work(name: &'static str, started: SystemTime, attributes: Vec<KeyValue>, steps: Vec<WorkStep>) {
    let tracer = tracer();
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use opentelemetry::trace::SpanId;

    use super::*;
    use crate::telemetry::spans::testing::{self, attribute, attributes};

    #[test]
    fn a_scheduling_pass_is_a_root_with_its_input_resolution() {
        testing::install();
        let job = format!("job-{}", rand::random::<u64>());
        let started = SystemTime::now() - Duration::from_secs(3);
        let (resolving, resolved) = (started + Duration::from_secs(1), started + Duration::from_secs(2));
        let inputs_resolved = InputResolution { system: DbSystem::Sqlite, started: resolving, ended: resolved };
        SchedulingPass { pipeline: "p", job: &job, started, inputs_resolved }.record();

        let job_value = opentelemetry::Value::from(job.clone());
        let pass = testing::ended(|s| {
            s.name == "scheduler.schedule_job" && attribute(s, "concourse.job.name") == Some(job_value.clone())
        });
        let [pass] = pass.as_slice() else { panic!("one pass: {pass:?}") };
        assert_eq!(pass.parent_span_id, SpanId::INVALID);
        assert_eq!(pass.span_kind, SpanKind::Internal);
        assert_eq!(pass.start_time, started);
        assert_eq!(attributes(pass), ["concourse.pipeline.name=p".to_string(), format!("concourse.job.name={job}")]);

        let resolution = testing::ended(|s| s.parent_span_id == pass.span_context.span_id());
        let [resolution] = resolution.as_slice() else { panic!("one child: {resolution:?}") };
        assert_eq!(resolution.name, "db.job_inputs.resolve");
        assert_eq!(resolution.span_kind, SpanKind::Client);
        assert_eq!((resolution.start_time, resolution.end_time), (resolving, resolved));
        assert_eq!(
            attributes(resolution),
            [
                "db.system.name=sqlite".to_string(),
                "db.operation.name=RESOLVE".to_string(),
                "db.collection.name=next_build_inputs".to_string(),
                format!("concourse.job.name={job}"),
            ]
        );
    }

    #[test]
    fn a_reaper_pass_is_a_root_that_counts_the_steps_it_stopped() {
        testing::install();
        let steps_stopped = u64::from(rand::random::<u32>());
        let started = SystemTime::now() - Duration::from_secs(1);
        ReaperPass { started, steps_stopped }.record();

        let count = opentelemetry::Value::I64(steps_stopped as i64);
        let pass = testing::ended(|s| {
            s.name == "collector.reap" && attribute(s, "concourse.steps.stopped") == Some(count.clone())
        });
        let [pass] = pass.as_slice() else { panic!("one pass: {pass:?}") };
        assert_eq!(pass.parent_span_id, SpanId::INVALID);
        assert_eq!(pass.start_time, started);
    }

    #[test]
    fn a_scan_is_a_root_that_counts_the_checks_it_started() {
        testing::install();
        let checks_started = u64::from(rand::random::<u32>());
        let started = SystemTime::now() - Duration::from_secs(1);
        LidarScan { started, checks_started }.record();

        let count = opentelemetry::Value::I64(checks_started as i64);
        let scan = testing::ended(|s| {
            s.name == "lidar.scan" && attribute(s, "concourse.checks.started") == Some(count.clone())
        });
        let [scan] = scan.as_slice() else { panic!("one scan: {scan:?}") };
        assert_eq!(scan.parent_span_id, SpanId::INVALID);
        assert_eq!(scan.span_kind, SpanKind::Internal);
        assert_eq!(scan.start_time, started);
    }
}
