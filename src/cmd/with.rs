//! `lockrun with FILE -- CMD`: run a command under FILE's lock.

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::WithArgs;
use crate::error::{Error, Result};
use crate::exit_code::ChildStatus;
use crate::exit_code::ExitCode;
use crate::lock::{self, LockGuard};
use crate::sys::spawn::{Child, SpawnOptions};
use crate::sys::{self, SignalMask, tree};
use crate::trace;

/// Signals lockrun takes over while the command runs. SIGCONT tells that lockrun's own
/// group was continued after a stop it mirrored from the command (Ctrl-Z, then `fg`).
const HANDLED: [i32; 6] = [
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGCONT,
];

/// Longest pause between two looks at what remains of the command's group once its
/// first process has exited.
const MAX_GROUP_POLL: Duration = Duration::from_millis(50);

pub(crate) fn run(args: &WithArgs, quiet: bool) -> Result<ExitCode> {
    let super::with_common::Plan { file, argv, opts } = super::with_common::plan(args, quiet)?;
    if opts.etcd.is_some() {
        let refused = [
            (args.exec, "-F/--exec"),
            (args.inherit, "--inherit"),
            (args.lock.stale_after.is_some(), "--stale-after"),
        ];
        if let Some((_, option)) = refused.iter().find(|(given, _)| *given) {
            return Err(Error::usage(format!(
                "{option} has no meaning with an etcd backend (a lease, kept alive by lockrun, holds the lock)"
            )));
        }
    }
    let mut guard = lock::acquire(&file, &opts)?;

    let program = argv[0].to_string_lossy().into_owned();
    if args.exec {
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
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
    // The command gets a process group of its own, so that every signal lockrun passes
    // on reaches its whole tree; and lockrun's terminal, when lockrun has it, so that
    // it reads the terminal and gets Ctrl-C as it would without lockrun.
    let terminal = tree::foreground_terminal();
    // An etcd lock tells the command its fencing token.
    let env: Vec<(&str, String)> = guard
        .fencing_token()
        .map(|t| ("LOCKRUN_FENCING_TOKEN", t.to_string()))
        .into_iter()
        .collect();
    let spawn_opts = SpawnOptions {
        own_group: true,
        terminal,
        record_fd: guard.child_record_fd().map(|fd| fd.as_raw_fd()),
        env: &env,
    };
    let child = match sys::spawn::spawn(&argv[0], &argv[1..], spawn_opts) {
        Ok(child) => child,
        Err(source) => {
            drop(mask);
            guard.release()?;
            return Err(Error::Spawn { program, source });
        }
    };
    let group = Group {
        pgid: child.id(),
        terminal,
        handed: terminal.is_some(),
    };
    trace::step(|| {
        format!(
            "started {program} as PID {} in its own process group{}",
            child.id(),
            if terminal.is_some() {
                ", in the terminal's foreground"
            } else {
                ""
            }
        )
    });
    // From here on a lost etcd lease SIGKILLs the command's group at once.
    guard.kill_on_loss(group.pgid);
    if !child.recorded()
        && !guard.is_remote()
        && let Err(e) = guard.note_child(child.id(), Some(group.pgid))
    {
        trace::step(|| format!("could not record the command in the lock: {e}"));
    }
    let outcome = supervise(child, group, &mask, args.max_hold, args.kill_after);
    drop(mask);
    let outcome = outcome?;
    if let Some(lost) = guard.lost() {
        drop(guard);
        return Err(lost);
    }
    let code = match outcome {
        Outcome::Code(code) => code,
        Outcome::Signal { signal, .. } => ExitCode::of_command(ChildStatus::Signaled(signal)),
    };
    match guard.release() {
        Ok(()) => {
            if let Outcome::Signal {
                signal,
                from_terminal,
            } = outcome
            {
                trace::step(|| format!("released; dying of signal {signal} as the command did"));
                tree::die_of(signal, from_terminal);
                // Still here: a signal whose default is not to end a process.
            }
            Ok(code)
        }
        Err(e) => {
            crate::quote::say(&format!("{e}"));
            Ok(code.after_failed_release(e.exit_code()))
        }
    }
}

/// The command's process group and lockrun's terminal.
struct Group {
    pgid: u32,
    terminal: Option<i32>,
    /// The terminal's foreground is the command's group now.
    handed: bool,
}

impl Group {
    fn signal(&self, signal: i32) {
        trace::step(|| format!("signal {signal} to process group {}", self.pgid));
        if let Err(e) = tree::signal_group(self.pgid, signal) {
            trace::step(|| format!("cannot signal process group {}: {e}", self.pgid));
        }
    }

    /// Continues the stopped command, in the terminal's foreground if lockrun has it.
    fn resume(&mut self) {
        if let Some(fd) = self.terminal
            && tree::in_foreground(fd)
        {
            match tree::give_terminal(fd, self.pgid) {
                Ok(()) => self.handed = true,
                Err(e) => trace::step(|| format!("cannot hand the terminal over: {e}")),
            }
        }
        self.signal(libc::SIGCONT);
    }

    fn take_terminal_back(&mut self) {
        if let (true, Some(fd)) = (self.handed, self.terminal) {
            self.handed = false;
            if let Err(e) = tree::take_terminal_back(fd) {
                trace::step(|| format!("cannot take the terminal back: {e}"));
            }
        }
    }
}

/// What lockrun reports once the lock is released.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Code(ExitCode),
    /// The command died of `signal`: lockrun dies of it too; `from_terminal` when the
    /// terminal was the command's (its Ctrl-C reached the command's group only).
    Signal {
        signal: i32,
        from_terminal: bool,
    },
}

/// Waits for the command and for every process of its group, passing signals on to the
/// group and enforcing `--max-hold`; returns what to report.
fn supervise(
    mut child: Child,
    mut group: Group,
    mask: &SignalMask,
    max_hold: Option<Duration>,
    kill_after: Duration,
) -> Result<Outcome> {
    let pid = child.id();
    let mut deadline = max_hold.map(|d| Instant::now() + d);
    // --max-hold expired (exit 124).
    let mut expired = false;
    // The group got SIGTERM (--max-hold, or its first process was killed); then SIGKILL.
    let mut terminated = false;
    let mut killed = false;
    let mut stopped = false;
    let mut ended: Option<(ChildStatus, bool)> = None;
    let mut poll = Duration::from_millis(1);
    loop {
        if ended.is_none() {
            match child
                .try_wait()
                .map_err(|e| Error::Internal(format!("waiting for PID {pid}: {e}")))?
            {
                Some(ChildStatus::Stopped(signal)) => {
                    // Ctrl-Z (or a read from the background): stop lockrun's own group
                    // as the terminal would have, and go on when it is continued.
                    trace::step(|| format!("command stopped by signal {signal}"));
                    group.take_terminal_back();
                    stopped = true;
                    if signal != libc::SIGSTOP {
                        tree::stop_own_group(signal);
                        // Not stopped (an orphaned group): the terminal would not have
                        // stopped the command either; a read from the background
                        // (SIGTTIN/SIGTTOU) would only stop it again.
                        if signal == libc::SIGTSTP && !tree::continue_pending() {
                            stopped = false;
                            group.resume();
                        }
                    }
                    continue;
                }
                Some(status) => {
                    trace::step(|| format!("command ended: {status:?}"));
                    let handed = group.handed;
                    ended = Some((status, handed));
                    if matches!(status, ChildStatus::Signaled(_))
                        && !terminated
                        && tree::group_runs(group.pgid)
                    {
                        // The command was killed (Ctrl-C, a signal passed on): end what
                        // remains of its tree too, TERM then KILL.
                        group.signal(libc::SIGTERM);
                        terminated = true;
                        deadline = Some(Instant::now() + kill_after);
                    }
                }
                None => {}
            }
        }
        if ended.is_some() {
            if !tree::group_runs(group.pgid) {
                break;
            }
            if poll == Duration::from_millis(1) {
                trace::step(|| {
                    format!(
                        "command ended; waiting for the rest of process group {}",
                        group.pgid
                    )
                });
            }
        }
        let mut timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if ended.is_some() {
            timeout = Some(timeout.map_or(poll, |t| t.min(poll)));
            poll = (poll * 2).min(MAX_GROUP_POLL);
        }
        let received = mask
            .wait(timeout)
            .map_err(|e| Error::Internal(format!("waiting for signals: {e}")))?;
        match received {
            None => {
                if deadline.is_none_or(|d| Instant::now() < d) {
                    continue;
                }
                if !terminated {
                    expired = true;
                    terminated = true;
                    crate::quote::say(&format!(
                        "--max-hold expired: sending SIGTERM to the command (process group {})",
                        group.pgid
                    ));
                    group.signal(libc::SIGTERM);
                    deadline = Some(Instant::now() + kill_after);
                } else if !killed {
                    killed = true;
                    crate::quote::say(&format!(
                        "process group {} still running: sending SIGKILL",
                        group.pgid
                    ));
                    group.signal(libc::SIGKILL);
                    deadline = None;
                }
            }
            Some(sig) if sig.signal == libc::SIGCHLD => {}
            Some(sig) if sig.signal == libc::SIGCONT => {
                if stopped {
                    stopped = false;
                    group.resume();
                }
            }
            Some(sig) => {
                // TERM, HUP; INT and QUIT too: with the terminal handed to the command,
                // the terminal's own reach the command's group and not lockrun, so
                // any that reach lockrun were meant for the command as well.
                group.signal(sig.signal);
                if stopped {
                    group.signal(libc::SIGCONT);
                }
            }
        }
    }
    group.take_terminal_back();
    let (status, handed) = ended.unwrap_or((ChildStatus::Exited(0), false));
    if expired {
        return Ok(Outcome::Code(ExitCode::MaxHold));
    }
    Ok(match status {
        ChildStatus::Signaled(signal) => Outcome::Signal {
            signal,
            from_terminal: handed && matches!(signal, libc::SIGINT | libc::SIGQUIT),
        },
        other => Outcome::Code(ExitCode::of_command(other)),
    })
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
