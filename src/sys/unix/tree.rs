//! The command tree of `with`: its own process group, the terminal handed to it and
//! back, the group's signals, and how a taker tells whether a dead holder's group still
//! runs (zombies do not count: an exited process some init never reaps does no work).
//!
//! A process group is the unit both shells (job control) and `timeout(1)` use for "this
//! command and everything it started": `kill(-pgid)` reaches every process that did not
//! deliberately leave (setsid, daemons), atomically, and a PGID is not reused while any
//! member lives (a PID stays reserved while it names a group).

use std::io;
use std::time::{Duration, Instant};

/// True while some process of group `pgid` runs (is not a zombie).
pub(crate) fn group_runs(pgid: u32) -> bool {
    let Ok(raw) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    if raw <= 1 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the group exists; no memory is involved.
    let rc = unsafe { libc::kill(-raw, 0) };
    if rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    // The group exists (or EPERM: it exists, another user's). Zombies keep it existing.
    any_member_running(raw)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn any_member_running(pgid: libc::pid_t) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        // No /proc: only kill(2) could tell, and it counts zombies; say it runs.
        return true;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some((state, group)) = stat_state_and_group(pid)
            && group == pgid
            && !matches!(state, 'Z' | 'X' | 'x')
        {
            return true;
        }
    }
    false
}

/// State (field 3) and process group (field 5) of `/proc/<pid>/stat`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn stat_state_and_group(pid: u32) -> Option<(char, libc::pid_t)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past its end.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let group = fields.next()?.parse().ok()?;
    Some((state, group))
}

/// macOS: the group's members from `proc_listpids(PROC_PGRP_ONLY)`, each judged by
/// `pbi_status` (SZOMB is a zombie).
#[cfg(target_os = "macos")]
fn any_member_running(pgid: libc::pid_t) -> bool {
    // <libproc.h>: list the processes of one process group (not in the libc crate).
    const PROC_PGRP_ONLY: u32 = 2;
    let mut pids = vec![0 as libc::pid_t; 4096];
    let bytes = libc::c_int::try_from(pids.len() * std::mem::size_of::<libc::pid_t>())
        .unwrap_or(libc::c_int::MAX);
    // SAFETY: `pids` is writable for `bytes` bytes, the size proc_listpids is told; it
    // returns how many bytes it filled.
    let n = unsafe {
        libc::proc_listpids(PROC_PGRP_ONLY, pgid as u32, pids.as_mut_ptr().cast(), bytes)
    };
    let Ok(n) = usize::try_from(n) else {
        return true;
    };
    let count = (n / std::mem::size_of::<libc::pid_t>()).min(pids.len());
    pids[..count]
        .iter()
        .filter_map(|&p| u32::try_from(p).ok())
        .filter(|&p| p > 0)
        .any(|pid| {
            // A member that vanished meanwhile does not run; one we cannot read might.
            super::bsd_info(pid).is_some_and(|info| info.pbi_status != super::SZOMB)
        })
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
fn any_member_running(_pgid: libc::pid_t) -> bool {
    true
}

/// Sends `signal` to every process of group `pgid`; a group that is gone is no error.
pub(crate) fn signal_group(pgid: u32, signal: i32) -> io::Result<()> {
    let Ok(raw) = libc::pid_t::try_from(pgid) else {
        return Ok(());
    };
    if raw <= 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to signal process group 0 or 1",
        ));
    }
    // SAFETY: kill only sends a signal; no memory is involved.
    if unsafe { libc::kill(-raw, signal) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// True when group `pgid` may be the group whose leader started as `leader_start`: its
/// leader (the process whose PID is the PGID) is that very process, or gone. A PID that
/// names a living group is never handed to a new process, so a group whose leader is
/// gone is still the recorded one; a new process with that PID means the old group
/// emptied before, and the group (if any) is someone else's.
pub(crate) fn is_recorded_group(pgid: u32, leader_start: &str) -> bool {
    match super::process_start_token(pgid) {
        Some(now) => now == leader_start,
        None => true,
    }
}

/// Polls until no process of `pgid` runs; false when `until` came first.
pub(crate) fn wait_group_gone(pgid: u32, until: Instant) -> bool {
    let mut pause = Duration::from_micros(200);
    loop {
        if !group_runs(pgid) {
            return true;
        }
        let now = Instant::now();
        if now >= until {
            return false;
        }
        std::thread::sleep(pause.min(until - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The terminal lockrun runs in the foreground of: the first of stdin, stderr, stdout
/// that is a terminal whose foreground process group is lockrun's own.
pub(crate) fn foreground_terminal() -> Option<i32> {
    // SAFETY: getpgrp has no preconditions.
    let own = unsafe { libc::getpgrp() };
    [0, 2, 1].into_iter().find(|&fd| {
        // SAFETY: tcgetpgrp only queries `fd`; a descriptor that is not a terminal fails.
        unsafe { libc::tcgetpgrp(fd) == own }
    })
}

/// True while lockrun's own process group is the foreground group of terminal `fd`.
pub(crate) fn in_foreground(fd: i32) -> bool {
    // SAFETY: getpgrp has no preconditions; tcgetpgrp only queries `fd`.
    unsafe { libc::tcgetpgrp(fd) == libc::getpgrp() }
}

/// Makes `pgid` the foreground group of terminal `fd`. SIGTTOU, which a background
/// caller of tcsetpgrp gets, is blocked around the call.
pub(crate) fn give_terminal(fd: i32, pgid: u32) -> io::Result<()> {
    let Ok(raw) = libc::pid_t::try_from(pgid) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: sigset_t is plain data initialised by sigemptyset; pthread_sigmask reads
    // `set` and writes `old`, both live across the calls; tcsetpgrp only acts on `fd`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTTOU);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        let rc = libc::tcsetpgrp(fd, raw);
        let err = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if rc == 0 { Ok(()) } else { Err(err) }
    }
}

/// Gives terminal `fd` back to lockrun's own process group.
pub(crate) fn take_terminal_back(fd: i32) -> io::Result<()> {
    // SAFETY: getpgrp has no preconditions.
    let own = unsafe { libc::getpgrp() };
    give_terminal(fd, own as u32)
}

/// Stops lockrun's own process group with `signal` (SIGTSTP, SIGTTIN or SIGTTOU), as
/// the terminal would have stopped it had the command not had a group of its own; the
/// call returns once the group is continued.
pub(crate) fn stop_own_group(signal: i32) {
    // SAFETY: kill(0, sig) signals our own process group; no memory is involved. The
    // stop signals are not blocked in lockrun, so it stops here with the others.
    unsafe {
        libc::kill(0, signal);
    }
}

/// True when a SIGCONT (blocked by lockrun while it supervises) waits to be taken: the
/// group was stopped and continued. False after [`stop_own_group`] means the stop was
/// discarded (an orphaned process group cannot be stopped).
pub(crate) fn continue_pending() -> bool {
    // SAFETY: sigpending writes a sigset_t we own; sigismember only reads it.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending) == 0 && libc::sigismember(&pending, libc::SIGCONT) == 1
    }
}

/// Dies of `signal` with its default action, as the command did: the shell then sees
/// a command killed by that signal (and stops a loop on SIGINT). With `whole_group`,
/// the signal goes to lockrun's whole process group, as the terminal would have sent
/// it (for SIGINT and SIGQUIT of a terminal that was handed to the command). Returns
/// only if lockrun survived it (the signal's default is to ignore it).
pub(crate) fn die_of(signal: i32, whole_group: bool) {
    // SAFETY: resetting a disposition to SIG_DFL and unblocking it touch no memory of
    // ours; setrlimit gets a valid rlimit; kill/raise only send a signal.
    unsafe {
        if matches!(
            signal,
            libc::SIGQUIT
                | libc::SIGILL
                | libc::SIGABRT
                | libc::SIGFPE
                | libc::SIGSEGV
                | libc::SIGBUS
                | libc::SIGSYS
                | libc::SIGTRAP
                | libc::SIGXCPU
                | libc::SIGXFSZ
        ) {
            // The command dumped core (or did not); lockrun's own core is of no use.
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
        }
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        if whole_group {
            libc::kill(0, signal);
        } else {
            libc::raise(signal);
        }
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}
