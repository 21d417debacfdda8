//! `lockrun with FILE -- CMD` on Windows: the command and everything it starts run in a
//! Job object that ends with lockrun (`sys/windows/job.rs`), Windows' form of "a lock
//! lasts as long as its work".
//!
//! What differs from Unix, and why:
//! - Ctrl-C and Ctrl-Break reach the command directly (every process of the console gets
//!   them); lockrun ignores them, waits for the command, releases and exits with its
//!   status.
//! - `--max-hold` ends the whole job at once: Windows has no SIGTERM for a console
//!   program, so `--kill-after` has no use there.
//! - `--inherit` and `-F/--exec` need Unix descriptor passing and `exec`: refused.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Instant;

use crate::cli::WithArgs;
use crate::error::{Error, Result};
use crate::exit_code::{ChildStatus, ExitCode};
use crate::lock;
use crate::sys::job;
use crate::trace;

pub(crate) fn run(args: &WithArgs, quiet: bool) -> Result<ExitCode> {
    if args.exec || args.inherit {
        return Err(Error::usage(format!(
            "{} is not available on Windows (it passes the lock's descriptor to the command, which Windows cannot do); run the command under the lock as usual",
            if args.exec { "-F/--exec" } else { "--inherit" }
        )));
    }
    // With --name there is no FILE: clap gave the command's first word to FILE.
    let named = args.lock.backend.name.is_some();
    let (file, argv): (PathBuf, Vec<OsString>) = match &args.file {
        Some(first) if named => {
            let mut argv = vec![first.clone().into_os_string()];
            argv.extend(args.command.iter().cloned());
            (PathBuf::new(), argv)
        }
        Some(file) => (file.clone(), args.command.clone()),
        None => (PathBuf::new(), args.command.clone()),
    };
    if argv.is_empty() {
        return Err(Error::usage("with: no COMMAND to run"));
    }
    let mut opts = super::options::lock_options(&args.lock, quiet);
    opts.shared = args.shared;
    opts.command = Some(quote_command(&argv));
    let mut guard = lock::acquire(&file, &opts)?;

    let program = argv[0].to_string_lossy().into_owned();
    job::ignore_console_interrupts();
    let mut child = match job::spawn_in_job(&argv[0], &argv[1..]) {
        Ok(child) => child,
        Err(source) => {
            guard.release()?;
            return Err(Error::Spawn { program, source });
        }
    };
    let pid = child.id();
    trace::step(|| format!("started {program} as PID {pid} in a job"));
    if let Err(e) = guard.note_child(pid, None) {
        trace::step(|| format!("could not record the command in the lock: {e}"));
    }
    let deadline = args.max_hold.map(|d| Instant::now() + d);
    let waited = child
        .wait_until(deadline)
        .map_err(|e| Error::Internal(format!("waiting for PID {pid}: {e}")))?;
    let code = match waited {
        Some(status) => {
            trace::step(|| format!("command ended: {status:?}"));
            ExitCode::of_command(ChildStatus::Exited(status.code().unwrap_or(1)))
        }
        None => {
            eprintln!("lockrun: --max-hold expired: ending PID {pid} and everything it started");
            let _ = child.terminate(ExitCode::MaxHold.code() as u32);
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

/// The command line as a shell would read it back, for `COMMAND:`.
fn quote_command(argv: &[OsString]) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
}
