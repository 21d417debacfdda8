//! The directory lock of lockrun-protocol(5) (man/lockrun-protocol.5, PROTOCOL):
//! publish, probe, judge, release.
//!
//! `<lockdir>/<hex>.lock/` exists while the lock is held. Its `info` file carries an
//! exclusive flock for the holder's whole life, so liveness comes from the kernel: a
//! prober that can take that flock knows the holder is gone.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
#[cfg(unix)]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::flock;
use super::info::{Info, Liveness};
use super::removal::{self, Grave, Identity, grave_path};
use crate::sys;
use crate::trace;

/// How long a lock directory without `info` counts as "being created" (mkdir fallback
/// and foreign scripts) before it is judged dead.
pub(crate) const INFOLESS_GRACE: Duration = Duration::from_secs(2);

/// Set once a filesystem refused the no-replace rename: later publishes go straight to
/// the mkdir fallback.
#[cfg(unix)]
static NO_RENAME_NOREPLACE: AtomicBool = AtomicBool::new(false);

/// A lock directory we created and hold.
#[derive(Debug)]
pub(crate) struct HeldDir {
    pub(crate) lock_path: PathBuf,
    pub(crate) lock_dir: PathBuf,
    pub(crate) hex: String,
    /// The flocked `info`; closing it is what tells everyone we are gone.
    pub(crate) info_file: File,
    pub(crate) nonce: String,
}

/// What a look at `<hex>.lock` found.
/// What a look at a lock found. Generic over how a backend proves death (`E`) and what
/// it blocks on while a holder lives (`W`); the local directory's are the defaults.
#[derive(Debug)]
pub(crate) enum Probe<E = DeadEvidence, W = File> {
    /// No lock: try to publish.
    Free,
    /// A live holder. `waiter` is something to block on until it lets go (here: its
    /// flocked `info`, when it keeps one); `None` means poll.
    Alive {
        info: Option<Info>,
        since: Option<SystemTime>,
        waiter: Option<W>,
    },
    /// Dead, with the proof; here `evidence` holds the dead `info`'s flock when there is
    /// one.
    Dead {
        info: Option<Info>,
        reason: String,
        evidence: E,
    },
}

#[derive(Debug)]
pub(crate) enum DeadEvidence {
    /// We hold the flock of the dead holder's `info` (and the dir's identity).
    Info {
        file: File,
        dir_id: flock::FileId,
        /// The dead holder's command (`CHILD:`, its start token and `CHILD_PGID:`), if
        /// it named one.
        command: Option<(u32, String, Option<u32>)>,
    },
    /// A lock directory without `info`, older than the grace period.
    Infoless { dir_id: flock::FileId },
}

/// Tuning that decides what counts as dead.
#[derive(Debug, Clone, Default)]
pub(crate) struct Judge {
    /// A lock from another host counts as dead after this long.
    pub(crate) stale_after: Option<Duration>,
}

pub(crate) fn new_nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{:x}{n:x}", sys::current_pid(), nanos)
}

/// A lock directory prepared under a private name (`.tmp-<hex>-<nonce>`, its `info`
/// complete and flocked), waiting to be renamed into place. A waiter keeps it across
/// attempts: after a handoff several waiters race for the lock, and each loser would
/// otherwise create and remove a directory and a file every time. Removed on drop
/// unless published; while it exists its flocked `info` tells `cleanup` it is in use.
#[derive(Debug)]
pub(crate) struct Staged {
    path: PathBuf,
    /// `None` once published (the lock then owns it).
    info_file: Option<File>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.info_file.take().is_some() {
            remove_private_dir(&self.path);
        }
    }
}

/// Windows: creates the lock and returns it with its `info` locked, or `None` when
/// someone else holds `<hex>.lock`. NTFS refuses to rename a directory with an open file
/// in it, so the staging directory is renamed into place with its complete `info`
/// closed, and the `info` is opened and locked right after; meanwhile the `info`'s PID
/// and process start (this process, running) keep probers from taking it for dead. A
/// staging directory is not kept across attempts (it would have to stay closed).
#[cfg(windows)]
static TRANSIENT_PUBLISH_FAILURES: std::sync::atomic::AtomicU32 =
    std::sync::atomic::AtomicU32::new(0);

#[cfg(windows)]
pub(crate) fn publish(
    lock_dir: &Path,
    hex: &str,
    info: &Info,
    _staged: &mut Option<Staged>,
) -> io::Result<Option<HeldDir>> {
    let lock_path = lock_dir.join(format!("{hex}.lock"));
    let nonce = info.nonce.clone().unwrap_or_else(new_nonce);
    let path = lock_dir.join(format!(".tmp-{hex}-{}", new_nonce()));
    flock::dir_builder().create(&path)?;
    let staged_id = match flock::create_locked_info(&path, info.render().as_bytes())
        .and_then(|file| flock::id_of(&file))
    {
        Ok(id) => id,
        Err(e) => {
            remove_private_dir(&path);
            return Err(e);
        }
    };
    if let Err(e) = sys::rename_noreplace(&path, &lock_path) {
        remove_private_dir(&path);
        return match e.kind() {
            // Held by somebody, or a cleaner took our staging dir: try again.
            io::ErrorKind::AlreadyExists | io::ErrorKind::NotFound => Ok(None),
            // A virus scanner or indexer looking into the staging dir for a moment
            // (access denied, sharing violation): try again shortly, for about 2 s in
            // all before the error is reported.
            _ if matches!(e.raw_os_error(), Some(5) | Some(32))
                && TRANSIENT_PUBLISH_FAILURES.fetch_add(1, Ordering::Relaxed) < 1000 =>
            {
                std::thread::sleep(Duration::from_millis(2));
                Ok(None)
            }
            _ => Err(e),
        };
    }
    let info_file = match flock::lock_published_info(&lock_path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if flock::id_of(&info_file)? != staged_id {
        // Forced out (`unlock --force`) in that instant, and somebody else's now.
        return Ok(None);
    }
    trace::step(|| format!("published {}", lock_path.display()));
    Ok(Some(HeldDir {
        lock_path,
        lock_dir: lock_dir.to_path_buf(),
        hex: hex.to_string(),
        info_file,
        nonce,
    }))
}

/// Creates the lock with its `info` already flocked and complete, or returns `None`
/// when someone else holds `<hex>.lock`. `staged` carries the prepared directory from
/// one attempt to the next.
#[cfg(unix)]
pub(crate) fn publish(
    lock_dir: &Path,
    hex: &str,
    info: &Info,
    staged: &mut Option<Staged>,
) -> io::Result<Option<HeldDir>> {
    let lock_path = lock_dir.join(format!("{hex}.lock"));
    let nonce = info.nonce.clone().unwrap_or_else(new_nonce);
    if !NO_RENAME_NOREPLACE.load(Ordering::Relaxed) {
        let stage = match staged {
            Some(stage) => stage,
            None => {
                let path = lock_dir.join(format!(".tmp-{hex}-{nonce}"));
                flock::dir_builder().create(&path)?;
                let info_file = match flock::create_locked_info(&path, info.render().as_bytes()) {
                    Ok(f) => f,
                    Err(e) => {
                        remove_private_dir(&path);
                        return Err(e);
                    }
                };
                staged.insert(Staged {
                    path,
                    info_file: Some(info_file),
                })
            }
        };
        match sys::rename_noreplace(&stage.path, &lock_path) {
            Ok(()) => {
                trace::step(|| format!("published {}", lock_path.display()));
                if let Some(info_file) = stage.info_file.take() {
                    *staged = None;
                    return Ok(Some(HeldDir {
                        lock_path,
                        lock_dir: lock_dir.to_path_buf(),
                        hex: hex.to_string(),
                        info_file,
                        nonce,
                    }));
                }
                return Err(io::Error::other("a published staging directory was reused"));
            }
            // Held by somebody: keep the staging directory for the next attempt.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => {
                *staged = None;
                match e.kind() {
                    // A cleaner took our staging dir for garbage; try again.
                    io::ErrorKind::NotFound => return Ok(None),
                    io::ErrorKind::Unsupported => {
                        trace::step(|| "no-replace rename unsupported: using mkdir".into());
                        NO_RENAME_NOREPLACE.store(true, Ordering::Relaxed);
                    }
                    _ => return Err(e),
                }
            }
        }
    }
    // Fallback: mkdir is atomic too, but the lock is visible before its info exists;
    // probers give such a directory INFOLESS_GRACE.
    match flock::dir_builder().create(&lock_path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(e),
    }
    match flock::create_locked_info(&lock_path, info.render().as_bytes()) {
        Ok(info_file) => Ok(Some(HeldDir {
            lock_path,
            lock_dir: lock_dir.to_path_buf(),
            hex: hex.to_string(),
            info_file,
            nonce,
        })),
        // Our fresh dir was taken for dead and removed: start over.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => {
            let _ = fs::remove_dir(&lock_path);
            Err(e)
        }
    }
}

/// Best-effort removal of a directory only we know the name of.
fn remove_private_dir(path: &Path) {
    let _ = fs::remove_dir_all(path);
}

/// Looks at `<hex>.lock` and decides whether it is free, alive or dead.
pub(crate) fn probe(lock_path: &Path, judge: &Judge) -> io::Result<Probe> {
    let dir = match flock::open_dir_nofollow(lock_path) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Probe::Free),
        Err(e) if flock::is_not_a_lock(&e) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is not a lock directory (a symlink or a file is in its place); remove it by hand",
                    lock_path.display()
                ),
            ));
        }
        Err(e) => return Err(e),
    };
    let dir_meta = flock::dir_metadata(&dir)?;
    let dir_id = flock::dir_id(&dir)?;
    let dir_age = dir_meta
        .modified()
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default();
    let file = match flock::open_info_in(&dir) {
        Ok(f) => f,
        Err(e) if flock::is_not_a_lock(&e) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}/info is a symlink, not a lock file; remove {} by hand",
                    lock_path.display(),
                    lock_path.display()
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if dir_age < INFOLESS_GRACE {
                return Ok(Probe::Alive {
                    info: None,
                    since: dir_meta.modified().ok(),
                    waiter: None,
                });
            }
            return Ok(Probe::Dead {
                info: None,
                reason: format!("no info file after {}", super::format_age(dir_age)),
                evidence: DeadEvidence::Infoless { dir_id },
            });
        }
        Err(e) => return Err(e),
    };
    let since = file.metadata().ok().and_then(|m| m.modified().ok());
    match try_lock_settling(&file)? {
        false => {
            let info = Info::read_from(&file).ok();
            trace::step(|| format!("probe: held (flock busy) {}", lock_path.display()));
            Ok(Probe::Alive {
                info,
                since,
                waiter: Some(file),
            })
        }
        true => {
            let info = Info::read_from(&file)?;
            let command = info
                .child
                .zip(info.child_start.clone())
                .map(|(pid, start)| (pid, start, info.child_pgid));
            let verdict = judge_unlocked(&info, since, judge);
            trace::step(|| format!("probe: info flock free, verdict {verdict:?}"));
            match verdict {
                Verdict::Dead(reason) => Ok(Probe::Dead {
                    info: Some(info),
                    reason,
                    evidence: DeadEvidence::Info {
                        file,
                        dir_id,
                        command,
                    },
                }),
                Verdict::Creating if dir_age >= INFOLESS_GRACE => Ok(Probe::Dead {
                    info: Some(info),
                    reason: format!("empty info file after {}", super::format_age(dir_age)),
                    evidence: DeadEvidence::Info {
                        file,
                        dir_id,
                        command: None,
                    },
                }),
                Verdict::Alive | Verdict::Creating => {
                    drop(file);
                    Ok(Probe::Alive {
                        info: Some(info),
                        since,
                        waiter: None,
                    })
                }
            }
        }
    }
}

/// How long a prober gives a busy `info` flock that no holder keeps (`LIVENESS: pid`,
/// bash locks): there it is another prober, breaker or releaser passing through.
const TRANSIENT_FLOCK_PATIENCE: Duration = Duration::from_millis(200);

/// `try_lock` on a lock's `info` (`true`: taken); when it is busy but the holder keeps no flock, retries
/// for up to TRANSIENT_FLOCK_PATIENCE so that a passer-by is not taken for the holder.
fn try_lock_settling(file: &File) -> io::Result<bool> {
    let deadline = std::time::Instant::now() + TRANSIENT_FLOCK_PATIENCE;
    loop {
        if flock::try_lock(file)? {
            return Ok(true);
        }
        let mut reader = file;
        std::io::Seek::rewind(&mut reader)?;
        let info = Info::read_from(reader)?;
        std::io::Seek::rewind(&mut reader)?;
        let holder_keeps_flock = info.pid.is_none() || info.liveness == Some(Liveness::Flock);
        if holder_keeps_flock || std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[derive(Debug)]
enum Verdict {
    Alive,
    Creating,
    Dead(String),
}

/// Decides about a lock whose `info` flock nobody holds.
fn judge_unlocked(info: &Info, since: Option<SystemTime>, judge: &Judge) -> Verdict {
    let Some(pid) = info.pid else {
        return Verdict::Creating;
    };
    if info.liveness == Some(Liveness::Flock) {
        // Windows: a holder publishes its lock with `info` closed and locks it just after
        // (a directory with an open file cannot be renamed there), and moves it out
        // before letting go; in between, its running process is the proof of life.
        #[cfg(windows)]
        if info.hostname.as_deref() == Some(sys::hostname().as_str())
            && match info.pid_start.as_deref() {
                Some(start) => sys::process_is_running(pid, start),
                None => sys::pid_state(pid) == sys::PidState::Alive,
            }
        {
            return Verdict::Alive;
        }
        return Verdict::Dead(format!("holder PID {pid} exited (its flock is gone)"));
    }
    let here = sys::hostname();
    if let Some(host) = info.hostname.as_deref()
        && host != here
    {
        let age = since.and_then(|t| t.elapsed().ok()).unwrap_or_default();
        return match judge.stale_after {
            Some(limit) if age >= limit => Verdict::Dead(format!(
                "held on another host ({host}) for {}, past --stale-after",
                super::format_age(age)
            )),
            _ => Verdict::Alive,
        };
    }
    if let (Some(boot), Some(now)) = (info.boot_id(), sys::boot_id())
        && boot != now
    {
        return Verdict::Dead(format!("holder PID {pid} ran before the last reboot"));
    }
    if sys::pid_state(pid) == sys::PidState::Gone {
        return Verdict::Dead(format!("holder PID {pid} is gone"));
    }
    if let Some(recorded) = info.pid_start.as_deref()
        && let Some(current) = sys::process_start_token(pid)
        && recorded != current
    {
        return Verdict::Dead(format!("PID {pid} now belongs to another process"));
    }
    Verdict::Alive
}

/// How long a taker waits for the command of a dead `with` to be gone.
const ORPHAN_PATIENCE: Duration = Duration::from_secs(2);
/// How long a taker lets the tree of a dead `with` end by itself before SIGKILL.
#[cfg(unix)]
const ORPHAN_GRACE: Duration = Duration::from_millis(50);

/// A `with` killed by SIGKILL loses its flock before its command tree is gone (on
/// Linux the parent-death signal reaches its first process only; elsewhere nothing
/// does). The dead holder's `info` names the command (`CHILD:`) and its process group
/// (`CHILD_PGID:`). Give the group a short grace, then SIGKILL it, and wait until no
/// process of it runs (zombies do not). Only on this host and boot (the start token
/// says so) and only the recorded group: a reused PID or PGID is never touched.
/// False when something of it still runs after all that.
///
/// Windows: the dead holder's Job object ends the tree as the kernel closes the holder's
/// handles; the taker waits (bounded) for the command to be gone.
#[cfg(windows)]
pub(crate) fn end_orphaned_command(child: u32, start: &str, _pgid: Option<u32>) -> bool {
    wait_for_orphaned_command(child, start);
    !sys::process_is_running(child, start)
}

#[cfg(unix)]
pub(crate) fn end_orphaned_command(child: u32, start: &str, pgid: Option<u32>) -> bool {
    let this_boot = start
        .split_once('@')
        .is_some_and(|(_, boot)| sys::boot_id().as_deref() == Some(boot));
    let Some(pgid) = pgid.filter(|&g| g == child && g > 1 && this_boot) else {
        wait_for_orphaned_command(child, start);
        return true;
    };
    if !sys::tree::is_recorded_group(pgid, start) {
        trace::step(|| format!("process group {pgid} of the dead holder is another's now"));
        return true;
    }
    let started = std::time::Instant::now();
    if sys::tree::wait_group_gone(pgid, started + ORPHAN_GRACE) {
        if started.elapsed() > Duration::from_micros(100) {
            trace::step(|| format!("process group {pgid} of the dead holder ended"));
        }
        return true;
    }
    trace::step(|| format!("process group {pgid} of the dead holder still runs: SIGKILL"));
    // Checked again just before the kill: the leader may have gone and its PID been
    // reused meanwhile only if the group emptied, which the wait above rules out.
    if !sys::tree::is_recorded_group(pgid, start) {
        return true;
    }
    if let Err(e) = sys::tree::signal_group(pgid, libc::SIGKILL) {
        trace::step(|| format!("cannot SIGKILL process group {pgid}: {e}"));
    }
    let gone = sys::tree::wait_group_gone(pgid, std::time::Instant::now() + ORPHAN_PATIENCE);
    trace::step(|| {
        if gone {
            format!("process group {pgid} of the dead holder is gone")
        } else {
            format!("process group {pgid} of the dead holder still runs after SIGKILL")
        }
    });
    gone
}

/// Without a recorded group (a holder of an older lockrun): wait until the command
/// itself is gone, bounded.
fn wait_for_orphaned_command(child: u32, start: &str) {
    let deadline = std::time::Instant::now() + ORPHAN_PATIENCE;
    let mut waited = false;
    while sys::process_is_running(child, start) {
        if std::time::Instant::now() >= deadline {
            trace::step(|| {
                format!("command PID {child} of the dead holder still runs; taking over")
            });
            return;
        }
        waited = true;
        std::thread::sleep(Duration::from_micros(500));
    }
    if waited {
        trace::step(|| format!("waited for command PID {child} of the dead holder to end"));
    }
}

/// Releases a lock we hold. Errors with `LockLost` text when the lock was broken or
/// replaced from outside meanwhile (then nothing is removed).
pub(crate) fn release(held: HeldDir) -> Result<(), ReleaseError> {
    let lost = || {
        ReleaseError::Lost(format!(
            "{} no longer holds our info file",
            held.lock_path.display()
        ))
    };
    let ours =
        flock::id_of(&held.info_file).map_err(|e| ReleaseError::Io(held.lock_path.clone(), e))?;
    let id = Identity {
        dir: None,
        info: Some(ours),
    };
    let grave = grave_path(&held.lock_dir, Grave::Released, &held.hex, &held.nonce);
    match removal::bury(&held.lock_path, &id, &grave) {
        Ok(true) => {}
        Ok(false) => return Err(lost()),
        Err(e) => return Err(ReleaseError::Io(held.lock_path.clone(), e)),
    }
    // The lock is free from the rename on; the flock goes next, because it is what a
    // waiter blocks on, and it need not wait for the clean-up below. A waiter that
    // wakes on the renamed `info` re-checks the lock path's identity and finds it gone
    // or somebody else's, and `cleanup` treats `.released-*` as garbage either way.
    drop(held.info_file);
    trace::step(|| format!("released {}", held.lock_path.display()));
    let _ = removal::remove_grave(&grave);
    Ok(())
}

#[derive(Debug)]
pub(crate) enum ReleaseError {
    Lost(String),
    Io(PathBuf, io::Error),
}
