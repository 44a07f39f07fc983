//! Integration tests: a real server on a loopback port against real SQLite
//! and PostgreSQL databases, driven over HTTP as `fly` and browsers do.

#[path = "../support/mod.rs"]
mod support;

/// The real `atc` binary, as the telemetry tests run it.
#[path = "../telemetry/atc_process.rs"]
#[allow(dead_code)]
mod atc_process;

mod anonymous_access;
mod auth;
mod db;
mod document_limits;
mod events;
mod execute;
mod fly_set_pipeline;
mod instance_vars_depth;
mod names;
mod pipelines;
mod pipelines_run;
mod plan_limits;
mod rejections;
mod roles;
mod system;
mod teams;
mod testflight;
mod versions;
