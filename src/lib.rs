//! lockrun: cross-process file locks for shell pipelines, agent hooks, MCP servers and
//! cron jobs, and atomic, validated JSON read-modify-write under them.
//!
//! The library's API for Rust callers is [`acquire`] (with [`LockOptions`], returning a
//! [`LockGuard`]) and [`json::edit::modify`]; everything else is the executable's.
//!
//! The lock engine and the subcommands run on Unix and Windows (the platform code is in
//! `sys/unix` and `sys/windows`); elsewhere the crate builds the command line, the man
//! page and the completions, and [`run`] says the platform is unsupported.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
// Off Unix only the command line is built: the engine's shared parts (exit codes, JSON
// parsing, the argument translation) have no caller there yet.
#![cfg_attr(not(any(unix, windows)), allow(dead_code))]

mod cli;
mod cmd;
mod error;
mod exit_code;
pub mod json;
pub mod lock;
mod man;
mod quote;
mod run;
mod sys;
mod trace;

#[cfg(all(test, unix))]
mod proptests;

pub use error::Error;
#[cfg(unix)]
pub use lock::EtcdSettings;
pub use lock::{LockGuard, LockOptions, acquire};
pub use run::run;

/// What the executable does before [`run`]; not part of the library API.
#[doc(hidden)]
pub fn process_setup() {
    sys::process_setup();
}
