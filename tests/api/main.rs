//! Integration tests: a real server on a loopback port against real SQLite
//! and PostgreSQL databases, driven over HTTP as `fly` and browsers do.

#[path = "../support/mod.rs"]
mod support;

mod artifact_uploads;
mod auth;
mod browser_login;
mod clearing;
mod concurrency;
mod db;
mod events;
mod execute;
mod input_limits;
mod instanced_routes;
mod leases;
mod missing_routes;
mod nul_characters;
mod outage;
mod pipelines;
mod pipelines_run;
mod redaction;
mod roles;
mod server_paths;
mod system;
mod teams;
mod testflight;
mod versions;
