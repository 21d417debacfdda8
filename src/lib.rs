//! lockrun: cross-process file locks for shell pipelines, agent hooks, MCP servers and
//! cron jobs, and atomic, validated JSON read-modify-write under them.
//!
//! The library's entry point for Rust callers is [`lock::acquire`].

//!
//! The lock engine, the subcommands and the platform code are Unix-only (flock(2),
//! POSIX signals, `std::os::unix`); on other systems the crate builds the command line,
//! the man page and the completions, and [`run`] says the platform is unsupported.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
#[cfg(unix)]
pub mod cmd;
pub mod error;
pub mod exit_code;
pub mod json;
#[cfg(unix)]
pub mod lock;
pub mod man;
mod run;
#[cfg(unix)]
pub mod sys;
pub mod trace;

pub use error::Error;
#[cfg(unix)]
pub use lock::{LockGuard, LockOptions, acquire};
pub use run::run;
