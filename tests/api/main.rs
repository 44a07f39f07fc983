//! Integration tests: a real server on a loopback port against real SQLite
//! and PostgreSQL databases, driven over HTTP as `fly` and browsers do.

#[path = "../support/mod.rs"]
mod support;

mod artifact_uploads;
mod auth;
mod db;
mod events;
mod execute;
mod input_limits;
mod nul_characters;
mod pipelines;
mod pipelines_run;
mod roles;
mod server_paths;
mod system;
mod teams;
mod testflight;
mod versions;
