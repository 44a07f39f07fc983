//! Running builds: plans, steps, hooks, artifacts and build events.

pub mod compile;
pub mod event;
pub mod event_hub;
pub mod event_log;
pub mod exec;
pub mod plan;
pub mod runner;
pub mod state;
pub mod tracker;
