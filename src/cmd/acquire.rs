//! `lockrun acquire FILE`: take FILE's lock for the calling shell and print its id.

use crate::cli::AcquireArgs;
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;
use crate::lock::{self, Owner};
use crate::sys;

use super::lock_report;

pub(crate) fn run(args: &AcquireArgs, quiet: bool) -> Result<ExitCode> {
    // The shell that will run `release`: past the forked subshells between it and us.
    let owner = sys::owner::calling_shell(args.owner.unwrap_or_else(sys::parent_pid));
    if owner <= 1 {
        return Err(Error::usage(format!(
            "the lock owner would be PID {owner}, which never exits; run acquire from a shell or pass --owner PID"
        )));
    }
    if sys::pid_state(owner) == sys::PidState::Gone {
        return Err(Error::usage(format!(
            "--owner {owner}: no such process on this host"
        )));
    }
    let mut opts = super::options::lock_options(&args.lock, quiet);
    opts.owner = Owner::Process(owner);
    opts.command = sys::process_command(owner);
    let file = args.file.clone().unwrap_or_default();
    #[cfg(unix)]
    if let Some(settings) = opts.etcd.clone() {
        if args.lock.stale_after.is_some() {
            return Err(Error::usage(
                "--stale-after has no meaning with an etcd backend (a lease holds the lock)",
            ));
        }
        return super::etcd_acquire::acquire(&file, &opts, &settings, owner);
    }
    let guard = lock::acquire(&file, &opts)?;
    // If the id cannot be printed nobody could release the lock: the guard's drop
    // releases it on that error.
    lock_report::write_stdout(&format!("{}\n", guard.lock_path().display()))?;
    // The lock outlives us: its liveness is the owner's PID from now on.
    guard.leak();
    Ok(ExitCode::Success)
}
