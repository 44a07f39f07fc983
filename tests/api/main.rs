//! Integration tests: a real server on a loopback port against real SQLite
//! and PostgreSQL databases, driven over HTTP as `fly` and browsers do.

#[path = "../support/mod.rs"]
mod support;

mod anonymous_access;
mod auth;
mod db;
mod events;
mod execute;
mod fly_set_pipeline;
mod names;
mod pipelines;
mod pipelines_run;
mod rejections;
mod roles;
mod system;
mod teams;
mod testflight;
mod versions;
