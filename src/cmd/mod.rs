//! The command layer: one module per subcommand, each turning its parsed arguments
//! (`crate::cli`) into calls on the engines (`lock`, `json`) and returning the exit
//! code to use on success. `options` is where arguments become engine options.

pub(crate) mod acquire;
pub(crate) mod cleanup;
mod lock_report;
mod options;
pub(crate) mod release;
pub(crate) mod show;
pub(crate) mod status;
pub(crate) mod unlock;
#[cfg(unix)]
pub(crate) mod with;
// Windows: the command runs in a Job object (sys/windows/job.rs) instead of under
// POSIX signals.
#[cfg(windows)]
#[path = "with_windows.rs"]
pub(crate) mod with;
mod with_common;

pub(crate) mod append;
mod json_out;
pub(crate) mod patch;
pub(crate) mod pointer;
pub(crate) mod read;
pub(crate) mod update;
pub(crate) mod write;

#[cfg(unix)]
pub(crate) mod etcd_acquire;
#[cfg(unix)]
mod etcd_admin;

use std::path::Path;

use crate::error::{Error, Result};
use crate::lock::LockKey;

/// The lock a command names: `--name NAME`, else FILE's path.
pub(crate) fn lock_key(file: Option<&Path>, name: Option<&str>) -> Result<LockKey> {
    match (name, file) {
        (Some(name), _) => LockKey::for_name(name),
        (None, Some(file)) => LockKey::for_path(file),
        (None, None) => Err(Error::usage("name a FILE, or a lock with --name NAME")),
    }
}
