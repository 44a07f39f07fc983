//! Test support shared with the other targets, included here: `atc web`
//! nodes and their API client (`tests/cli/nodes.rs`, which takes `ATC` and
//! `free_port` from the module that includes it) and the test PostgreSQL
//! (`tests/support/postgres.rs`, with `on_exit`).

use std::net::TcpListener;

pub const ATC: &str = env!("CARGO_BIN_EXE_atc");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[allow(dead_code, reason = "shared with tests/cli, which uses more of it")]
#[path = "../cli/nodes.rs"]
pub mod nodes;
// The test PostgreSQL, from the whole test harness that the pipeline scenarios include.
pub use crate::pipelines::support::postgres;
