//! atc: a Concourse-compatible CI orchestrator. See ARCHITECTURE.md for the
//! map of modules and the rules between them.

pub mod api;
pub mod auth;
pub mod byte_size;
pub mod cli;
pub mod clock;
pub mod component;
pub mod config;
pub mod creds;
pub mod db;
pub mod duration;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod gc;
pub mod kube_access;
pub mod lidar;
pub mod logging;
pub mod metric;
pub mod nesting;
pub mod nul;
pub mod resource;
pub mod runtime;
pub mod scheduler;
pub mod server;
pub mod telemetry;
pub mod ui;
