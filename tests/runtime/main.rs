//! The runtime test suite and the resource protocol on real processes.
//!
//! `suite` holds cases written against `&dyn Runtime` only; `runtime_suite!`
//! turns them into tests for one runtime (the local one in `local`; a
//! Kubernetes runtime adds a module doing the same). `local` adds what only
//! the local runtime can show (pids on this host, users, notices);
//! `resources` runs the resource protocol and the built-in types.

mod support;
#[macro_use]
mod suite;
mod local;
mod resources;
