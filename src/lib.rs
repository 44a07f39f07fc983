//! atc: a Concourse-compatible CI orchestrator. See ARCHITECTURE.md for the
//! map of modules and the rules between them.

pub mod cli;
pub mod config;
pub mod duration;
