//! Integration tests: a real server on a loopback port against real SQLite
//! and PostgreSQL databases, driven over HTTP as `fly` and browsers do.

#[path = "../support/mod.rs"]
mod support;

/// The real `atc` binary, as the telemetry tests run it.
#[path = "../telemetry/atc_process.rs"]
#[allow(dead_code)]
mod atc_process;

mod anonymous_access;
mod artifact_uploads;
mod auth;
mod aws;
mod browser_login;
mod clearing;
mod concurrency;
mod corrupt_rows;
mod credhub;
mod creds_pipelines;
mod db;
mod document_limits;
mod events;
mod events_across_nodes;
mod execute;
mod fly_set_pipeline;
mod input_limits;
mod instance_vars_depth;
mod instanced_routes;
mod intercept;
mod kubernetes_creds;
mod leases;
mod missing_routes;
mod names;
mod nul_characters;
mod outage;
mod pipeline_ordering;
mod pipelines;
mod pipelines_run;
mod plan_limits;
mod redaction;
mod rejections;
mod roles;
mod server_paths;
mod step_reaping;
mod step_specs;
mod system;
mod teams;
mod testflight;
mod vault;
mod versions;
mod web_pages;
