//! The lock engine: the one module that owns every lock operation.
//!
//! ```no_run
//! use lockrun::lock::{acquire, LockOptions};
//! # fn main() -> Result<(), lockrun::Error> {
//! let opts = LockOptions { label: Some("mcp-server".into()), ..LockOptions::default() };
//! let guard = acquire("memory.json".as_ref(), &opts)?;
//! // ... read and write memory.json ...
//! guard.release()?; // or just drop it
//! # Ok(()) }
//! ```

mod backend;
pub(crate) mod dir;
pub(crate) mod entry;
// The etcd client is built on Unix only (its lease keeper kills the command's process
// group by signal); elsewhere `--backend` is refused before any command runs.
#[cfg(unix)]
pub(crate) mod etcd;
#[cfg(unix)]
mod flock;
// The same functions on Windows, under sys/ with the rest of the platform code.
#[cfg(windows)]
use crate::sys::lock_files as flock;
mod gate;
pub(crate) mod info;
pub(crate) mod key;
pub(crate) mod lock_id;
pub(crate) mod look;
pub(crate) mod readers;
pub(crate) mod removal;
pub(crate) mod sweep;
mod wait;

use std::fs::File;
use std::io;
#[cfg(unix)]
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};
use crate::trace;
use backend::{Backend, LocalDir};
use dir::{Judge, Probe, ReleaseError};
#[cfg(unix)]
pub use etcd::config::EtcdSettings;
use info::{Info, Liveness, Mode};
pub(crate) use key::LockKey;
use wait::Waiting;

/// The default wait for a busy lock.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest pause between two looks at a lock whose holder keeps no flock.
const MAX_POLL: Duration = Duration::from_millis(50);

/// Who the lock belongs to, which decides how others tell it is alive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Owner {
    /// This process, for as long as the guard (or an inherited fd) lives: `LIVENESS: flock`.
    #[default]
    ThisProcess,
    /// Another process of this host (the calling shell of `acquire`): `LIVENESS: pid`.
    Process(u32),
}

/// How to take a lock.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// Shared (reader) lock instead of exclusive.
    pub shared: bool,
    /// How long to wait for a busy lock; `None` waits forever, zero tries once.
    pub timeout: Option<Duration>,
    /// Where the lock lives; `None`: `$LOCKRUN_DIR` is *not* consulted here (the CLI
    /// does that), `.locks` beside the target.
    pub lock_dir: Option<PathBuf>,
    /// Recorded as `LABEL:` and shown to whoever finds the lock busy.
    pub label: Option<String>,
    /// Recorded as `COMMAND:`.
    pub command: Option<String>,
    /// Locks of another host count as dead after this long.
    pub stale_after: Option<Duration>,
    pub owner: Owner,
    /// Print one "waiting for" line on stderr after this long.
    pub notice_after: Option<Duration>,
    /// Lock this name instead of the target's path (`--name`): the same lock for every
    /// host, whatever path it mounts a shared file at.
    pub name: Option<String>,
    /// Keep the lock in etcd instead of a lock directory (`--backend etcd://...`).
    #[cfg(unix)]
    pub etcd: Option<EtcdSettings>,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            shared: false,
            timeout: Some(DEFAULT_TIMEOUT),
            lock_dir: None,
            label: None,
            command: None,
            stale_after: None,
            owner: Owner::ThisProcess,
            notice_after: None,
            name: None,
            #[cfg(unix)]
            etcd: None,
        }
    }
}

/// A held lock; released on drop (errors then are ignored: call [`LockGuard::release`]
/// to see them).
#[derive(Debug)]
pub struct LockGuard {
    key: LockKey,
    lock_dir: PathBuf,
    /// The lock held in its place (today always a local directory: see `backend.rs`).
    held: Option<<LocalDir as Backend>::Held>,
    /// `LOCK_SH` on `<hex>.rw` for a shared holder.
    reader_gate: Option<ReaderGate>,
    /// The lock held in etcd instead (`--backend etcd://...`).
    #[cfg(unix)]
    remote: Option<etcd::lock::Held>,
}

#[derive(Debug)]
struct ReaderGate {
    file: File,
    /// Opened for appending (the reader's command is recorded in it).
    writable: bool,
}

impl LockGuard {
    /// `<lockdir>/<hex>.lock`: the lock id of `acquire`.
    pub(crate) fn lock_path(&self) -> PathBuf {
        self.key.lock_path(&self.lock_dir)
    }

    /// The descriptors whose life is the lock's (for `--inherit` and `--exec`).
    #[cfg(unix)]
    pub(crate) fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds = Vec::new();
        if let Some(h) = &self.held {
            fds.push(h.info_file.as_fd());
        }
        if let Some(g) = &self.reader_gate {
            fds.push(g.file.as_fd());
        }
        fds
    }

    /// Where the command of `with` records itself (`CHILD:` lines): the lock's `info`,
    /// or for a shared holder the reader gate when it is writable.
    #[cfg(unix)]
    pub fn child_record_fd(&self) -> Option<BorrowedFd<'_>> {
        if let Some(h) = &self.held {
            return Some(h.info_file.as_fd());
        }
        match &self.reader_gate {
            Some(ReaderGate {
                file,
                writable: true,
            }) => Some(file.as_fd()),
            _ => None,
        }
    }

    /// Leaves the lock in place without releasing it: for `acquire`, whose lock outlives
    /// this process, and for `--exec`, whose command inherits it.
    pub(crate) fn leak(mut self) {
        if let Some(held) = self.held.take() {
            std::mem::forget(held.info_file);
        }
        if let Some(gate) = self.reader_gate.take() {
            std::mem::forget(gate.file);
        }
    }

    /// Records the command run under the lock (`CHILD:`, and `CHILD_PGID:` when it leads
    /// a process group of its own) in the lock's `info`, or for a shared holder in the
    /// reader gate, so that whoever takes the lock over after a crash first ends what
    /// still runs of that command's tree.
    pub(crate) fn note_child(&mut self, pid: u32, pgid: Option<u32>) -> Result<()> {
        let token = crate::sys::process_start_token(pid);
        let lines = info::child_lines(Some(pid), token.as_deref(), pgid);
        if let Some(held) = self.held.as_mut() {
            return std::io::Write::write_all(&mut held.info_file, lines.as_bytes())
                .map_err(|e| Error::io(held.lock_path.join("info"), e));
        }
        match &mut self.reader_gate {
            Some(ReaderGate {
                file,
                writable: true,
            }) => std::io::Write::write_all(file, lines.as_bytes())
                .map_err(|e| Error::io(self.key.rw_path(&self.lock_dir), e)),
            _ => Ok(()),
        }
    }

    /// The fencing token of an etcd lock (its key's creation revision); `None` locally.
    #[cfg(unix)]
    pub(crate) fn fencing_token(&self) -> Option<i64> {
        self.remote.as_ref().map(etcd::lock::Held::fencing_token)
    }

    /// The etcd lock itself, for `acquire` to hand over to its keeper.
    #[cfg(unix)]
    pub(crate) fn into_remote(mut self) -> Option<etcd::lock::Held> {
        self.remote.take()
    }

    /// Whether the lock lives in etcd.
    #[cfg(unix)]
    pub(crate) fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// An etcd lock: SIGKILL `pid` the moment the lease is lost.
    #[cfg(unix)]
    pub(crate) fn kill_on_loss(&self, pid: u32) {
        if let Some(r) = &self.remote {
            r.kill_on_loss(pid);
        }
    }

    /// An etcd lock whose lease was lost: the line that says so.
    #[cfg(unix)]
    pub(crate) fn lost(&self) -> Option<Error> {
        self.remote
            .as_ref()
            .and_then(etcd::lock::Held::lost)
            .map(Error::LeaseLost)
    }

    /// Proves, just before an action only the holder may take (the rename of a JSON
    /// writer), that the lock is still ours: an etcd lease is checked with etcd once
    /// more. A local lock cannot be lost while its flock is held.
    pub(crate) fn confirm(&self) -> Result<()> {
        #[cfg(unix)]
        if let Some(r) = &self.remote {
            return r.check().map_err(etcd::lock_error);
        }
        Ok(())
    }

    /// Releases the lock, reporting a lock that was broken from outside meanwhile.
    pub fn release(mut self) -> Result<()> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<()> {
        #[cfg(unix)]
        if let Some(remote) = self.remote.take() {
            return match remote.release() {
                // Not an error of the work done under the lock: the lease, no longer
                // kept alive, expires by itself and the lock with it.
                Err(etcd::lock::LockError::Etcd(why)) => {
                    eprintln!(
                        "lockrun: warning: could not release {} in etcd ({why}); it frees itself when its lease expires",
                        self.key.target.display()
                    );
                    Ok(())
                }
                other => other.map_err(etcd::lock_error),
            };
        }
        drop(self.reader_gate.take());
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        LocalDir::release(held).map_err(|e| release_error(&self.key, e))
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.release_inner();
    }
}

/// Takes the lock on `target` (which need not exist), or on `opts.name`.
pub fn acquire(target: &Path, opts: &LockOptions) -> Result<LockGuard> {
    let key = match &opts.name {
        Some(name) => LockKey::for_name(name)?,
        None => LockKey::for_path(target)?,
    };
    #[cfg(unix)]
    if let Some(settings) = &opts.etcd {
        return etcd::acquire(key, settings, opts);
    }
    let lock_dir = key::ensure_lock_dir(&key, opts.lock_dir.as_deref())?;
    let started = Instant::now();
    let deadline = opts.timeout.map(|t| started + t);
    let mode = if opts.shared {
        Mode::Shared
    } else {
        Mode::Exclusive
    };
    trace::step(|| {
        format!(
            "acquire {} ({}) in {}",
            key.target.display(),
            mode.as_str(),
            lock_dir.display()
        )
    });
    let mut waiting = Waiting::new(
        started,
        deadline,
        opts.notice_after,
        &key.target,
        opts.timeout,
    );
    let mut place = LocalDir::new(&lock_dir, &key.hex);
    let held = take(
        &mut place,
        &build_info(&key, opts, mode),
        opts,
        &mut waiting,
    )?;
    let mut guard = LockGuard {
        key: key.clone(),
        lock_dir: lock_dir.clone(),
        held: Some(held),
        reader_gate: None,
        #[cfg(unix)]
        remote: None,
    };
    let rw_path = key.rw_path(&lock_dir);
    if opts.shared {
        let (gate, writable) =
            flock::open_gate(&rw_path, true).map_err(|e| Error::io(&rw_path, e))?;
        // No writer can hold LOCK_EX now: writers take it only while holding the dir lock.
        // No other reader either: the list of readers' commands can be settled.
        let first = flock::try_lock(&gate).map_err(|e| Error::io(&rw_path, e))?;
        if first {
            gate::settle_gate(&gate, writable).map_err(|e| Error::io(&rw_path, e))?;
        }
        flock::lock_shared(&gate).map_err(|e| Error::io(&rw_path, e))?;
        // flock converts LOCK_EX to LOCK_SH; a Windows lock stacks instead, and the
        // exclusive one would keep every other reader out.
        #[cfg(windows)]
        if first {
            flock::drop_exclusive(&gate).map_err(|e| Error::io(&rw_path, e))?;
        }
        // Windows cannot tell who holds a lock: readers name themselves in the gate.
        #[cfg(windows)]
        if writable {
            flock::note_reader(&gate, crate::sys::current_pid())
                .map_err(|e| Error::io(&rw_path, e))?;
        }
        guard.reader_gate = Some(ReaderGate {
            file: gate,
            writable,
        });
        // Let other readers in; writers still wait for our LOCK_SH.
        if let Some(held) = guard.held.take() {
            LocalDir::release(held).map_err(|e| release_error(&key, e))?;
        }
        trace::step(|| "shared: holding LOCK_SH on the reader gate".into());
    } else {
        match flock::open_gate(&rw_path, false) {
            Ok((gate, writable)) => {
                trace::step(|| "exclusive: waiting for readers to drain".into());
                let got = waiting.wait_on(&gate, true, "shared readers")?;
                if !got {
                    return Err(waiting.busy_error("shared readers".to_string()));
                }
                // Every reader was gone at that instant, and none can come back while we
                // hold the dir lock: wait for the commands killed readers left behind.
                gate::settle_gate(&gate, writable).map_err(|e| Error::io(&rw_path, e))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&rw_path, e)),
        }
    }
    trace::step(|| {
        format!(
            "acquired after {:.3} ms",
            started.elapsed().as_secs_f64() * 1000.0
        )
    });
    Ok(guard)
}

pub(crate) fn build_info(key: &LockKey, opts: &LockOptions, mode: Mode) -> Info {
    let (pid, liveness) = match opts.owner {
        Owner::ThisProcess => (crate::sys::current_pid(), Liveness::Flock),
        Owner::Process(pid) => (pid, Liveness::Pid),
    };
    Info {
        pid: Some(pid),
        acquired: Some(info::timestamp(SystemTime::now())),
        hostname: Some(crate::sys::hostname()),
        tool: Some(format!("lockrun {}", env!("CARGO_PKG_VERSION"))),
        pid_start: crate::sys::process_start_token(pid),
        uid: Some(crate::sys::current_uid()),
        mode: Some(mode),
        liveness: Some(liveness),
        target: Some(key.target.to_string_lossy().into_owned()),
        label: opts.label.clone(),
        command: opts.command.clone(),
        nonce: Some(dir::new_nonce()),
        child: None,
        child_start: None,
        child_pgid: None,
    }
}

/// The acquire loop, for any backend: take the lock if it is free, break it if it is
/// dead, else wait on its holder (or poll) until it is ours or the wait expires.
fn take<B: Backend>(
    place: &mut B,
    info: &Info,
    opts: &LockOptions,
    waiting: &mut Waiting<'_>,
) -> Result<B::Held> {
    let judge = Judge {
        stale_after: opts.stale_after,
    };
    let mut backoff = Duration::from_millis(1);
    loop {
        // A look first: right after a handoff the lock is usually somebody's again, and a
        // publish that loses creates and removes a directory and a file for nothing
        // (with several waiters, most of a contended update's file-system work).
        if place.seems_free() {
            match place.try_take(info) {
                Ok(Some(held)) => return Ok(held),
                Ok(None) => {}
                Err(e) => return Err(lock_create_error(place.location(), e)),
            }
        }
        let probe = place
            .probe(&judge)
            .map_err(|e| lock_error(place.name(), e))?;
        match probe {
            Probe::Free => continue,
            Probe::Dead {
                info: dead,
                reason,
                evidence,
            } => {
                trace::step(|| {
                    let who = dead
                        .as_ref()
                        .map_or_else(|| "an info-less lock".to_string(), |i| i.describe(None));
                    format!("dead lock of {who}: {reason}")
                });
                place
                    .break_dead(evidence)
                    .map_err(|e| Error::io(place.name(), e))?;
            }
            Probe::Alive {
                info: holder,
                since,
                waiter,
            } => {
                let who = holder
                    .as_ref()
                    .map_or_else(|| "a lock being created".to_string(), |i| i.describe(since));
                if waiting.expired() {
                    return Err(waiting.busy_error(who));
                }
                match waiter {
                    Some(waiter) => {
                        trace::step(|| "waiting on the holder".into());
                        // One bounded wait; look again afterwards whether or not the
                        // holder let go (granted means it let go or died).
                        waiting.maybe_notice(&who);
                        place
                            .wait(waiter, waiting.wake_by())
                            .map_err(|e| Error::io(waiting.target(), e))?;
                    }
                    None => {
                        waiting.maybe_notice(&who);
                        let now = Instant::now();
                        let pause = waiting
                            .wake_by()
                            .map_or(backoff, |w| backoff.min(w.saturating_duration_since(now)));
                        trace::step(|| format!("polling: sleeping {}", format_age(pause)));
                        std::thread::sleep(pause);
                        backoff = (backoff * 2).min(MAX_POLL);
                    }
                }
            }
        }
    }
}

fn release_error(key: &LockKey, e: ReleaseError) -> Error {
    match e {
        ReleaseError::Lost(detail) => Error::LockLost {
            target: key.target.clone(),
            detail,
        },
        ReleaseError::Io(path, source) => Error::io(path, source),
    }
}

fn lock_create_error(lock_dir: &Path, e: io::Error) -> Error {
    Error::LockDir {
        path: lock_dir.to_path_buf(),
        source: e,
    }
}

/// "0.4s", "2.1s", "3m", "3m12s", "2h5m": ages readable at a glance.
pub(crate) fn format_age(age: Duration) -> String {
    let secs = age.as_secs();
    if secs < 60 {
        let s = format!("{:.1}", age.as_secs_f64());
        let s = s.strip_suffix(".0").unwrap_or(&s).to_string();
        return format!("{s}s");
    }
    if secs < 3600 {
        let (m, s) = (secs / 60, secs % 60);
        return if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        };
    }
    let (h, m) = (secs / 3600, (secs % 3600) / 60);
    if m == 0 {
        format!("{h}h")
    } else {
        format!("{h}h{m}m")
    }
}

/// An error met looking at the lock `lock_path`: something that is not a lock in its
/// place (a symlink, a file; the message names the path) is exit 73, the rest I/O.
pub(crate) fn lock_error(lock_path: &std::path::Path, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::InvalidData => Error::NotALock(e.to_string()),
        _ => Error::io(lock_path, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(format_age(Duration::from_millis(2100)), "2.1s");
        assert_eq!(format_age(Duration::from_secs(5)), "5s");
        assert_eq!(format_age(Duration::from_millis(300)), "0.3s");
        assert_eq!(format_age(Duration::from_secs(180)), "3m");
        assert_eq!(format_age(Duration::from_secs(192)), "3m12s");
        assert_eq!(format_age(Duration::from_secs(7500)), "2h5m");
    }
}
