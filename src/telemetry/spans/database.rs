//! CLIENT spans of the database operations that matter to a trace
//! (creating a build, saving versions, taking a lock), not one per query.
//! They are children of whatever span is current and are skipped when none
//! is, so idle component ticks leave nothing behind.

use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::tracer;
use crate::telemetry::semconv::*;

/// The engine behind the database (`db.system.name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbSystem {
    Postgresql,
    Sqlite,
}

impl DbSystem {
    fn as_str(self) -> &'static str {
        match self {
            DbSystem::Postgresql => "postgresql",
            DbSystem::Sqlite => "sqlite",
        }
    }
}

/// The operations that get a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbOperation {
    CreateBuild,
    SaveVersions,
    AcquireLock,
    /// The scheduler's input resolution, recorded after the fact
    /// (`SchedulingPass`).
    ResolveJobInputs,
}

impl DbOperation {
    fn span_name(self) -> &'static str {
        match self {
            DbOperation::CreateBuild => "db.build.create",
            DbOperation::SaveVersions => "db.resource_versions.save",
            DbOperation::AcquireLock => "db.lock.acquire",
            DbOperation::ResolveJobInputs => "db.job_inputs.resolve",
        }
    }

    /// `db.operation.name` and `db.collection.name`.
    fn operation_and_collection(self) -> (&'static str, &'static str) {
        match self {
            DbOperation::CreateBuild => ("INSERT", "builds"),
            DbOperation::SaveVersions => ("INSERT", "resource_versions"),
            DbOperation::AcquireLock => ("LOCK", "locks"),
            DbOperation::ResolveJobInputs => ("RESOLVE", "next_build_inputs"),
        }
    }

    pub(super) fn describe(self, system: DbSystem) -> (&'static str, Vec<KeyValue>) {
        let (operation, collection) = self.operation_and_collection();
        let attributes = vec![
            KeyValue::new(DB_SYSTEM_NAME, system.as_str()),
            KeyValue::new(DB_OPERATION_NAME, operation),
            KeyValue::new(DB_COLLECTION_NAME, collection),
        ];
        (self.span_name(), attributes)
    }

    /// Starts the operation's span under the current span; without one,
    /// a span that records nothing.
    pub fn start(self, system: DbSystem) -> DbSpan {
        let parent = Context::current();
        if !parent.span().span_context().is_valid() {
            return DbSpan(None);
        }
        let (name, attributes) = self.describe(system);
        let tracer = tracer();
        let span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&tracer, &parent);
        DbSpan(Some(span))
    }
}

/// A started [`DbOperation`]'s span.
pub struct DbSpan(Option<BoxedSpan>);

impl DbSpan {
    /// What taking a lock of `lock_type` (`scheduling_job`, ...) came to.
    pub fn record_lock(&mut self, lock_type: &'static str, acquired: bool) {
        if let Some(span) = &mut self.0 {
            span.set_attribute(KeyValue::new(CONCOURSE_LOCK_TYPE, lock_type));
            span.set_attribute(KeyValue::new(CONCOURSE_LOCK_ACQUIRED, acquired));
        }
    }

    /// Ends the span, marked failed when the operation was.
    pub fn end<T, E: std::fmt::Display>(self, result: &Result<T, E>) {
        let Some(mut span) = self.0 else { return };
        if let Err(err) = result {
            span.set_attribute(KeyValue::new(ERROR_TYPE, "db_error"));
            span.set_status(Status::error(err.to_string()));
        }
        span.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::spans::testing::{self, attributes};

    #[test]
    fn without_a_current_span_an_operation_records_nothing() {
        let _unrelated = testing::no_parent().attach();
        assert!(DbOperation::CreateBuild.start(DbSystem::Sqlite).0.is_none());
    }

    #[test]
    fn an_operation_is_a_client_span_under_the_current_one() {
        let request = testing::parent();
        {
            let _current = request.clone().attach();
            let mut span = DbOperation::AcquireLock.start(DbSystem::Postgresql);
            span.record_lock("scheduling_job", true);
            span.end::<(), String>(&Ok(()));
        }
        let span = testing::one_ended_in(&request);
        assert_eq!(span.name, "db.lock.acquire");
        assert_eq!(span.span_kind, SpanKind::Client);
        assert_eq!(span.parent_span_id, request.span().span_context().span_id());
        assert_eq!(
            attributes(&span),
            [
                "db.system.name=postgresql",
                "db.operation.name=LOCK",
                "db.collection.name=locks",
                "concourse.lock.type=scheduling_job",
                "concourse.lock.acquired=true",
            ]
        );
        assert_eq!(span.status, Status::Unset);
    }

    #[test]
    fn a_failed_operation_marks_its_span_failed() {
        let request = testing::parent();
        {
            let _current = request.clone().attach();
            DbOperation::CreateBuild.start(DbSystem::Sqlite).end::<(), _>(&Err("disk full"));
        }
        let span = testing::one_ended_in(&request);
        assert_eq!(span.name, "db.build.create");
        assert_eq!(
            attributes(&span),
            ["db.system.name=sqlite", "db.operation.name=INSERT", "db.collection.name=builds", "error.type=db_error"]
        );
        assert_eq!(span.status, Status::error("disk full"));
    }

    #[test]
    fn every_operation_has_its_name_and_collection() {
        let describe = |operation: DbOperation| {
            let (name, attributes) = operation.describe(DbSystem::Sqlite);
            (name, attributes.iter().skip(1).map(|a| a.value.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(describe(DbOperation::CreateBuild), ("db.build.create", vec!["INSERT".into(), "builds".into()]));
        assert_eq!(
            describe(DbOperation::SaveVersions),
            ("db.resource_versions.save", vec!["INSERT".into(), "resource_versions".into()])
        );
        assert_eq!(describe(DbOperation::AcquireLock), ("db.lock.acquire", vec!["LOCK".into(), "locks".into()]));
        assert_eq!(
            describe(DbOperation::ResolveJobInputs),
            ("db.job_inputs.resolve", vec!["RESOLVE".into(), "next_build_inputs".into()])
        );
    }
}
