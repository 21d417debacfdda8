//! `lockrun with FILE -- CMD` on Windows: the command and everything it starts run in a
//! Job object that ends with lockrun (`sys/windows/job.rs`), Windows' form of "a lock
//! lasts as long as its work".
//!
//! What differs from Unix, and why:
//! - The command leads a console process group of its own; lockrun passes Ctrl-C and
//!   Ctrl-Break on to it as Ctrl-Break (Windows cannot aim a Ctrl-C at a group), waits
//!   for it, releases and exits with its status.
//! - `--max-hold` sends the command's group a Ctrl-Break (Windows' nearest to SIGTERM),
//!   then ends the whole job after `--kill-after` (as SIGKILL would).
//! - `--inherit` and `-F/--exec` need Unix descriptor passing and `exec`: refused.

use std::time::Instant;

use crate::cli::WithArgs;
use crate::error::{Error, Result};
use crate::exit_code::{ChildStatus, ExitCode};
use crate::lock;
use crate::sys::job;
use crate::trace;

/// Windows' error for a file that is not a program it can start (winerror.h).
const ERROR_BAD_EXE_FORMAT: i32 = 193;

pub(crate) fn run(args: &WithArgs, quiet: bool) -> Result<ExitCode> {
    if args.exec || args.inherit {
        return Err(Error::usage(format!(
            "{} is not available on Windows (it passes the lock's descriptor to the command, which Windows cannot do); run the command under the lock as usual",
            if args.exec { "-F/--exec" } else { "--inherit" }
        )));
    }
    let super::with_common::Plan { file, argv, opts } = super::with_common::plan(args, quiet)?;
    let mut guard = lock::acquire(&file, &opts)?;

    let program = argv[0].to_string_lossy().into_owned();
    job::forward_console_interrupts();
    let mut child = match job::spawn_in_job(&argv[0], &argv[1..]) {
        Ok(child) => child,
        Err(source) => {
            guard.release()?;
            // Windows' own words for it name a placeholder ("Bad EXE format for %1.").
            let source = if source.raw_os_error() == Some(ERROR_BAD_EXE_FORMAT) {
                std::io::Error::other("not a Windows program (os error 193)")
            } else {
                source
            };
            return Err(Error::Spawn { program, source });
        }
    };
    let pid = child.id();
    trace::step(|| format!("started {program} as PID {pid} in a job"));
    if let Err(e) = guard.note_child(pid, None) {
        trace::step(|| format!("could not record the command in the lock: {e}"));
    }
    let deadline = args.max_hold.map(|d| Instant::now() + d);
    let wait = |child: &mut job::JobChild, until| {
        child
            .wait_until(until)
            .map_err(|e| Error::Internal(format!("waiting for PID {pid}: {e}")))
    };
    let code = match wait(&mut child, deadline)? {
        Some(status) => {
            trace::step(|| format!("command ended: {status:?}"));
            ExitCode::of_command(ChildStatus::Exited(status.code().unwrap_or(1)))
        }
        None => {
            // As Unix sends SIGTERM, then SIGKILL after --kill-after.
            let asked = child.interrupt();
            if asked {
                crate::quote::say(&format!(
                    "--max-hold expired: sending Ctrl-Break to the command (PID {pid})"
                ));
            }
            let grace = Instant::now() + args.kill_after;
            if !asked || wait(&mut child, Some(grace))?.is_none() {
                crate::quote::say(&format!(
                    "--max-hold expired: ending PID {pid} and everything it started"
                ));
                let _ = child.terminate(ExitCode::MaxHold.code() as u32);
            }
            ExitCode::MaxHold
        }
    };
    // Whatever the command left running ends with the job, before the lock is free.
    drop(child);
    match guard.release() {
        Ok(()) => Ok(code),
        Err(e) => {
            eprintln!("lockrun: {e}");
            Ok(code.after_failed_release(e.exit_code()))
        }
    }
}
