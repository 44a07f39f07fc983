//! The database's side of its spans (`telemetry::spans::DbOperation`):
//! which system it is, and a span for an operation on this handle.

use super::{Backend, Db};
use crate::telemetry::spans::{DbOperation, DbSpan, DbSystem};

impl Backend {
    /// The `db.system.name` of its spans.
    pub fn span_system(self) -> DbSystem {
        match self {
            Backend::Postgres => DbSystem::Postgresql,
            Backend::Sqlite => DbSystem::Sqlite,
        }
    }
}

impl Db {
    /// `operation`'s span, under the current span (none without one).
    pub(super) fn operation_span(&self, operation: DbOperation) -> DbSpan {
        operation.start(self.backend().span_system())
    }
}
