//! lockrun: cross-process file locks for shell pipelines, agent hooks, MCP servers and
//! cron jobs, and atomic, validated JSON read-modify-write under them.
//!
//! The library's entry point for Rust callers is [`lock::acquire`].

pub mod cli;
pub mod cmd;
pub mod error;
pub mod exit_code;
pub mod json;
pub mod lock;
pub mod man;
mod run;
pub mod sys;
pub mod trace;

pub use error::Error;
pub use lock::{LockGuard, LockOptions, acquire};
pub use run::run;
