//! Looking at a lock from outside, for `status`, `show`, `cleanup` and `unlock`: its
//! state, who holds it and how that is known, with the proof for a stale one.
//!
//! Verdicts come from [`super::dir::probe`]; dead locks are removed with
//! [`super::removal::break_dead`]. Nothing here decides liveness on its own.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::dir::{self, DeadEvidence, Judge, Probe};
use super::info::Info;
use super::readers::{Readers, readers};
use crate::sys;

/// What a lock is, as `status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Free,
    Held,
    Stale,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Free => "free",
            State::Held => "held",
            State::Stale => "stale",
        }
    }
}

/// How a held lock is known to be alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// The holder keeps the flock on its `info` file.
    Flock,
    /// Its PID runs (with the recorded start token, when there is one).
    Pid,
    /// Held from another host: it cannot be checked from here.
    Host,
    /// No `info` (or no PID in it) yet, within the grace period.
    Creating,
    /// Shared holders keep `LOCK_SH` on the reader gate.
    Readers,
}

impl Liveness {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Liveness::Flock => "flock",
            Liveness::Pid => "pid",
            Liveness::Host => "host",
            Liveness::Creating => "creating",
            Liveness::Readers => "readers",
        }
    }
}

/// Everything a look at one lock found.
#[derive(Debug)]
pub(crate) struct LockReport {
    /// `<lockdir>/<hex>.lock`
    pub(crate) lock_path: PathBuf,
    pub(crate) state: State,
    pub(crate) info: Option<Info>,
    /// When the holder wrote its `info` (or made the directory, when there is none).
    pub(crate) since: Option<SystemTime>,
    /// How a held lock is known to be alive.
    pub(crate) liveness: Option<Liveness>,
    /// For a stale lock, the proof; for a held one, what keeps it alive.
    pub(crate) reason: Option<String>,
    pub(crate) readers: Readers,
}

impl LockReport {
    /// The lock directory itself is held (by a holder known from its `info`, or one
    /// still creating it), not only the reader gate.
    pub(crate) fn dir_held(&self) -> bool {
        self.info.is_some() || self.liveness == Some(Liveness::Creating)
    }

    /// Held by shared holders alone: nothing holds the lock directory.
    pub(crate) fn shared_only(&self) -> bool {
        self.liveness == Some(Liveness::Readers) && !self.dir_held()
    }
}

/// A look at a lock plus what it takes to act on it.
#[derive(Debug)]
pub(crate) struct Look {
    pub(crate) report: LockReport,
    /// For a stale lock: the proof to hand to [`dir::break_dead`].
    pub(crate) evidence: Option<DeadEvidence>,
}

/// `<lockdir>/<hex>.rw` for `<lockdir>/<hex>.lock`.
pub(crate) fn gate_path(lock_path: &Path) -> PathBuf {
    let name = lock_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let hex = name.strip_suffix(".lock").unwrap_or(&name);
    lock_path.with_file_name(format!("{hex}.rw"))
}

/// Looks at the lock at `lock_path` (and its shared readers) without taking it.
pub(crate) fn look(lock_path: &Path, judge: &Judge) -> io::Result<Look> {
    let readers = readers(&gate_path(lock_path))?;
    let probe = dir::probe(lock_path, judge)?;
    let mut look = match probe {
        Probe::Free => Look {
            report: LockReport {
                lock_path: lock_path.to_path_buf(),
                state: State::Free,
                info: None,
                since: None,
                liveness: None,
                reason: None,
                readers: Readers::default(),
            },
            evidence: None,
        },
        Probe::Alive {
            info,
            since,
            waiter,
        } => {
            let (liveness, reason) = why_alive(info.as_ref(), waiter.is_some(), since);
            Look {
                report: LockReport {
                    lock_path: lock_path.to_path_buf(),
                    state: State::Held,
                    info,
                    since,
                    liveness: Some(liveness),
                    reason: Some(reason),
                    readers: Readers::default(),
                },
                evidence: None,
            }
        }
        Probe::Dead {
            info,
            reason,
            evidence,
        } => {
            let since = match &evidence {
                DeadEvidence::Info { file, .. } => {
                    file.metadata().ok().and_then(|m| m.modified().ok())
                }
                DeadEvidence::Infoless { .. } => fs::symlink_metadata(lock_path)
                    .ok()
                    .and_then(|m| m.modified().ok()),
            };
            Look {
                report: LockReport {
                    lock_path: lock_path.to_path_buf(),
                    state: State::Stale,
                    info,
                    since,
                    liveness: None,
                    reason: Some(reason),
                    readers: Readers::default(),
                },
                evidence: Some(evidence),
            }
        }
    };
    if readers.any() {
        let count = if readers.unknown {
            "shared holders".to_string()
        } else {
            format!("{} shared holder(s)", readers.pids.len())
        };
        match look.report.state {
            State::Free => {
                look.report.state = State::Held;
                look.report.liveness = Some(Liveness::Readers);
                look.report.reason = Some(format!("{count} keep LOCK_SH on the reader gate"));
            }
            State::Stale => {
                // The directory lock is dead, but live readers still hold the file.
                let proof = look.report.reason.take().unwrap_or_default();
                look.report.state = State::Held;
                look.report.liveness = Some(Liveness::Readers);
                look.report.reason = Some(format!(
                    "{count} keep LOCK_SH on the reader gate; the directory lock is stale ({proof})"
                ));
                look.evidence = None;
            }
            State::Held => {}
        }
        look.report.readers = readers;
    }
    Ok(look)
}

fn why_alive(info: Option<&Info>, flocked: bool, since: Option<SystemTime>) -> (Liveness, String) {
    if flocked {
        return (
            Liveness::Flock,
            "the holder keeps the flock on its info file".into(),
        );
    }
    let age = since
        .and_then(|t| t.elapsed().ok())
        .map(super::format_age)
        .unwrap_or_else(|| "0s".into());
    let Some(info) = info else {
        return (
            Liveness::Creating,
            format!("being created: no info file yet ({age} old, grace 2s)"),
        );
    };
    let Some(pid) = info.pid else {
        return (
            Liveness::Creating,
            format!("being created: no PID in the info file yet ({age} old, grace 2s)"),
        );
    };
    let here = sys::hostname();
    if let Some(host) = info.hostname.as_deref()
        && host != here
    {
        return (
            Liveness::Host,
            format!(
                "held on another host ({host}); it cannot be checked from here (--stale-after SECS expires it)"
            ),
        );
    }
    let token = if info.pid_start.is_some() {
        " with the recorded start token"
    } else {
        ""
    };
    (Liveness::Pid, format!("PID {pid} is running{token}"))
}
