//! One module per subcommand; each returns the exit code to use on success.

pub mod acquire;
pub mod cleanup;
mod introspect;
pub mod release;
pub mod show;
pub mod status;
pub mod unlock;
pub mod with;

pub mod append;
pub mod json_out;
pub mod patch;
pub mod pointer;
pub mod read;
pub mod update;
pub mod write;

use std::time::Duration;

use crate::cli::LockArgs;
use crate::exit_code::ExitCode;
use crate::lock::LockOptions;

/// After this long a waiter says, once, what it is waiting for.
const WAIT_NOTICE_AFTER: Duration = Duration::from_secs(1);

/// Lock options from the command line's lock arguments.
pub fn lock_options(args: &LockArgs, quiet: bool) -> LockOptions {
    LockOptions {
        timeout: args.wait(),
        lock_dir: args.lock_dir.clone(),
        label: args.label.clone(),
        stale_after: args.stale_after,
        notice_after: if quiet { None } else { Some(WAIT_NOTICE_AFTER) },
        conflict_exit_code: args
            .conflict_exit_code
            .map_or(ExitCode::TempFail.code(), i32::from),
        ..LockOptions::default()
    }
}
