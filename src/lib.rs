//! atc: a Concourse-compatible CI orchestrator. See ARCHITECTURE.md for the
//! map of modules and the rules between them.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod duration;
pub mod metric;
pub mod server;
pub mod telemetry;
