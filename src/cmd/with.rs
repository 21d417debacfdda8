//! `lockrun with FILE -- CMD`: run a command under FILE's lock.

use std::ffi::OsString;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::WithArgs;
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;
use crate::lock::{self, LockGuard};
use crate::sys::spawn::Child;
use crate::sys::{self, SignalMask};
use crate::trace;

/// Signals lockrun takes over while the command runs.
const HANDLED: [i32; 5] = [
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
];

pub(crate) fn run(args: &WithArgs, quiet: bool) -> Result<ExitCode> {
    let mut opts = super::options::lock_options(&args.lock, quiet);
    opts.shared = args.shared;
    opts.command = Some(quote_command(&args.command));
    let mut guard = lock::acquire(&args.file, &opts)?;

    let program = args.command[0].to_string_lossy().into_owned();
    if args.exec {
        let mut command = Command::new(&args.command[0]);
        command.args(&args.command[1..]);
        return exec_in_place(command, guard, &program);
    }
    if args.inherit {
        for fd in guard.fds() {
            sys::set_inheritable(fd).map_err(|e| Error::io(guard.lock_path(), e))?;
        }
    }

    // Block before spawning, so no signal about the child can slip past.
    let mask = SignalMask::block(&HANDLED)
        .map_err(|e| Error::Internal(format!("cannot block signals: {e}")))?;
    let child = match sys::spawn::spawn(&args.command[0], &args.command[1..]) {
        Ok(child) => child,
        Err(source) => {
            drop(mask);
            guard.release()?;
            return Err(Error::Spawn { program, source });
        }
    };
    trace::step(|| format!("started {program} as PID {}", child.id()));
    if let Err(e) = guard.note_child(child.id()) {
        trace::step(|| format!("could not record the command in the lock: {e}"));
    }
    let outcome = supervise(child, &mask, args.max_hold, args.kill_after);
    drop(mask);
    let code = outcome?;
    match guard.release() {
        Ok(()) => Ok(code),
        Err(e) => {
            eprintln!("lockrun: {e}");
            Ok(code.after_failed_release(e.exit_code()))
        }
    }
}

/// Waits for the child, forwarding signals and enforcing `--max-hold`; returns the exit
/// status to report.
fn supervise(
    mut child: Child,
    mask: &SignalMask,
    max_hold: Option<Duration>,
    kill_after: Duration,
) -> Result<ExitCode> {
    let pid = child.id();
    let mut deadline = max_hold.map(|d| Instant::now() + d);
    let mut expired = false;
    let mut killed = false;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error::Internal(format!("waiting for PID {pid}: {e}")))?
        {
            trace::step(|| format!("command ended: {status:?}"));
            if expired {
                return Ok(ExitCode::MaxHold);
            }
            return Ok(ExitCode::of_command(status));
        }
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let received = mask
            .wait(timeout)
            .map_err(|e| Error::Internal(format!("waiting for signals: {e}")))?;
        match received {
            None => {
                // A deadline passed.
                if !expired {
                    expired = true;
                    eprintln!("lockrun: --max-hold expired: sending SIGTERM to PID {pid}");
                    let _ = sys::send_signal(pid, libc::SIGTERM);
                    deadline = Some(Instant::now() + kill_after);
                } else if !killed {
                    killed = true;
                    eprintln!("lockrun: PID {pid} still running: sending SIGKILL");
                    let _ = sys::send_signal(pid, libc::SIGKILL);
                    deadline = None;
                }
            }
            Some(sig) if sig.signal == libc::SIGCHLD => {}
            Some(sig) if sig.signal == libc::SIGTERM || sig.signal == libc::SIGHUP => {
                trace::step(|| format!("forwarding signal {} to PID {pid}", sig.signal));
                let _ = sys::send_signal(pid, sig.signal);
            }
            Some(sig) => {
                // SIGINT/SIGQUIT: the terminal already signalled the command's process
                // group; only a kill(2) aimed at lockrun alone needs passing on.
                if sig.sent_by_process {
                    trace::step(|| format!("forwarding signal {} to PID {pid}", sig.signal));
                    let _ = sys::send_signal(pid, sig.signal);
                }
            }
        }
    }
}

/// `-F/--exec`: the command replaces lockrun and keeps the lock's descriptors; the lock
/// is dead (and broken by the next taker) once the command exits.
fn exec_in_place(mut command: Command, guard: LockGuard, program: &str) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    for fd in guard.fds() {
        sys::set_inheritable(fd).map_err(|e| Error::io(guard.lock_path(), e))?;
    }
    let source = command.exec();
    // exec returned: the command could not start. Release and report.
    for fd in guard.fds() {
        let _ = sys::set_close_on_exec(fd);
    }
    guard.release()?;
    Err(Error::Spawn {
        program: program.to_string(),
        source,
    })
}

/// The command line as a shell would read it back, for `COMMAND:`.
fn quote_command(argv: &[OsString]) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
}
