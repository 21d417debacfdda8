//! The directory lock of DESIGN §2: publish, probe, break, release.
//!
//! `<lockdir>/<hex>.lock/` exists while the lock is held. Its `info` file carries an
//! exclusive flock for the holder's whole life, so liveness comes from the kernel: a
//! prober that can take that flock knows the holder is gone.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use rustix::fs::{Mode as FileMode, OFlags};

use super::info::{Info, Liveness};
use crate::sys;
use crate::trace;

/// How long a lock directory without `info` counts as "being created" (mkdir fallback
/// and foreign scripts) before it is judged dead.
pub const INFOLESS_GRACE: Duration = Duration::from_secs(2);

/// Set once a filesystem refused the no-replace rename: later publishes go straight to
/// the mkdir fallback.
static NO_RENAME_NOREPLACE: AtomicBool = AtomicBool::new(false);

/// A lock directory we created and hold.
#[derive(Debug)]
pub struct HeldDir {
    pub lock_path: PathBuf,
    pub lock_dir: PathBuf,
    pub hex: String,
    /// The flocked `info`; closing it is what tells everyone we are gone.
    pub info_file: File,
    pub nonce: String,
}

/// What a look at `<hex>.lock` found.
#[derive(Debug)]
pub enum Probe {
    /// No lock directory: try to publish.
    Free,
    /// A live holder. `waiter` is its flocked `info` when it keeps one (block on it);
    /// `None` means poll.
    Alive {
        info: Option<Info>,
        since: Option<SystemTime>,
        waiter: Option<File>,
    },
    /// Dead, with the proof; `evidence` holds the dead `info`'s flock when there is one.
    Dead {
        info: Option<Info>,
        reason: String,
        evidence: DeadEvidence,
    },
}

#[derive(Debug)]
pub enum DeadEvidence {
    /// We hold the flock of the dead holder's `info` (and the dir's identity).
    Info {
        file: File,
        dir_id: (u64, u64),
        /// The dead holder's command (`CHILD:` and its start token), if it named one.
        command: Option<(u32, String)>,
    },
    /// A lock directory without `info`, older than the grace period.
    Infoless { dir_id: (u64, u64) },
}

/// Tuning that decides what counts as dead.
#[derive(Debug, Clone, Default)]
pub struct Judge {
    /// A lock from another host counts as dead after this long.
    pub stale_after: Option<Duration>,
}

pub fn new_nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{:x}{n:x}", sys::current_pid(), nanos)
}

pub(crate) fn open_nofollow_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        rustix::fs::CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        FileMode::empty(),
    )?)
}

pub(crate) fn open_info_in(dir: &OwnedFd) -> io::Result<File> {
    let fd = rustix::fs::openat(
        dir,
        "info",
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        FileMode::empty(),
    )?;
    Ok(File::from(fd))
}

fn file_id(meta: &fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// A lock directory prepared under a private name (`.tmp-<hex>-<nonce>`, its `info`
/// complete and flocked), waiting to be renamed into place. A waiter keeps it across
/// attempts: after a handoff several waiters race for the lock, and each loser would
/// otherwise create and remove a directory and a file every time. Removed on drop
/// unless published; while it exists its flocked `info` tells `cleanup` it is in use.
#[derive(Debug)]
pub struct Staged {
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

/// Creates the lock with its `info` already flocked and complete, or returns `None`
/// when someone else holds `<hex>.lock`. `staged` carries the prepared directory from
/// one attempt to the next.
pub fn publish(
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
                fs::DirBuilder::new().mode(0o755).create(&path)?;
                let info_file = match write_locked_info(&path, info) {
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
    match fs::DirBuilder::new().mode(0o755).create(&lock_path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(e),
    }
    match write_locked_info(&lock_path, info) {
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

fn write_locked_info(dir: &Path, info: &Info) -> io::Result<File> {
    // O_EXCL|O_NOFOLLOW: never write through a planted link.
    let fd = rustix::fs::openat(
        rustix::fs::CWD,
        dir.join("info"),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        FileMode::from_raw_mode(0o644),
    )?;
    let mut file = File::from(fd);
    // Blocking: in the mkdir fallback a prober may hold it for an instant.
    file.lock()?;
    file.write_all(info.render().as_bytes())?;
    Ok(file)
}

/// Best-effort removal of a directory only we know the name of.
fn remove_private_dir(path: &Path) {
    let _ = fs::remove_dir_all(path);
}

/// Looks at `<hex>.lock` and decides whether it is free, alive or dead.
pub fn probe(lock_path: &Path, judge: &Judge) -> io::Result<Probe> {
    let dir = match open_nofollow_dir(lock_path) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Probe::Free),
        Err(e)
            if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
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
    let dir_meta = File::from(dir.try_clone()?).metadata()?;
    let dir_id = file_id(&dir_meta);
    let dir_age = dir_meta
        .modified()
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default();
    let file = match open_info_in(&dir) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
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
        Err(fs::TryLockError::WouldBlock) => {
            let info = Info::read_from(&file).ok();
            trace::step(|| format!("probe: held (flock busy) {}", lock_path.display()));
            Ok(Probe::Alive {
                info,
                since,
                waiter: Some(file),
            })
        }
        Err(fs::TryLockError::Error(e)) => Err(e),
        Ok(()) => {
            let info = Info::read_from(&file)?;
            let command = info.child.zip(info.child_start.clone());
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

/// `try_lock` on a lock's `info`; when it is busy but the holder keeps no flock, retries
/// for up to TRANSIENT_FLOCK_PATIENCE so that a passer-by is not taken for the holder.
fn try_lock_settling(file: &File) -> io::Result<Result<(), fs::TryLockError>> {
    let deadline = std::time::Instant::now() + TRANSIENT_FLOCK_PATIENCE;
    loop {
        match file.try_lock() {
            Err(fs::TryLockError::WouldBlock) => {}
            other => return Ok(other),
        }
        let mut reader = file;
        std::io::Seek::rewind(&mut reader)?;
        let info = Info::read_from(reader)?;
        std::io::Seek::rewind(&mut reader)?;
        let holder_keeps_flock = info.pid.is_none() || info.liveness == Some(Liveness::Flock);
        if holder_keeps_flock || std::time::Instant::now() >= deadline {
            return Ok(Err(fs::TryLockError::WouldBlock));
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

/// Removes a dead lock. Returns false when it changed under us (someone else broke or
/// re-created it): the caller simply probes again.
pub fn break_dead(
    lock_path: &Path,
    evidence: DeadEvidence,
    lock_dir: &Path,
    hex: &str,
) -> io::Result<bool> {
    let grave = lock_dir.join(format!(".stale-{hex}-{}", new_nonce()));
    match evidence {
        DeadEvidence::Info {
            file,
            dir_id,
            command,
        } => {
            if let Some((pid, start)) = command {
                wait_for_orphaned_command(pid, &start);
            }
            test_pause_before_break(lock_path);
            let still_ours = same_info(lock_path, &file, Some(dir_id))?;
            if !still_ours {
                trace::step(|| "break: lock changed since the probe; not touching it".into());
                return Ok(false);
            }
            match fs::rename(lock_path, &grave) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            }
            trace::step(|| format!("broke dead lock {}", lock_path.display()));
            remove_private_dir(&grave);
            drop(file);
            Ok(true)
        }
        DeadEvidence::Infoless { dir_id } => {
            // rmdir only: if info appeared meanwhile the dir is not empty and stays.
            let dir = match open_nofollow_dir(lock_path) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            };
            if file_id(&File::from(dir).metadata()?) != dir_id {
                return Ok(false);
            }
            match fs::remove_dir(lock_path) {
                Ok(()) => {
                    trace::step(|| format!("removed info-less lock {}", lock_path.display()));
                    Ok(true)
                }
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.kind() == io::ErrorKind::DirectoryNotEmpty =>
                {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// How long a taker waits for the command of a dead `with` to be gone.
const ORPHAN_PATIENCE: Duration = Duration::from_secs(2);

/// A `with` killed by SIGKILL loses its flock before the kernel delivers the
/// parent-death signal to its command: for that instant the command still runs. The
/// dead holder's `info` names the command (`CHILD:`); wait until it is gone (bounded:
/// without a parent-death signal, as on macOS, it may run on).
pub(super) fn wait_for_orphaned_command(child: u32, start: &str) {
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

/// True when `<lock_path>/info` is still the very file `file` (same dev and inode, still
/// linked), and the directory is the one probed when `dir_id` is given.
fn same_info(lock_path: &Path, file: &File, dir_id: Option<(u64, u64)>) -> io::Result<bool> {
    let ours = file.metadata()?;
    if ours.nlink() == 0 {
        return Ok(false);
    }
    let dir = match open_nofollow_dir(lock_path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e)
            if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    if let Some(id) = dir_id
        && file_id(&File::from(dir.try_clone()?).metadata()?) != id
    {
        return Ok(false);
    }
    let current = match open_info_in(&dir) {
        Ok(f) => f.metadata()?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    Ok(file_id(&current) == file_id(&ours))
}

/// Test-only hook: with `LOCKRUN_TEST_BREAK_PAUSE=PATH`, a breaker that has judged a lock
/// dead creates `PATH.paused` and waits (at most 30 s) for `PATH` to exist, so a test can
/// re-create the lock meanwhile and check that the breaker leaves the new one alone.
fn test_pause_before_break(lock_path: &Path) {
    let Some(gate) = std::env::var_os("LOCKRUN_TEST_BREAK_PAUSE") else {
        return;
    };
    let gate = PathBuf::from(gate);
    let mut paused = gate.clone().into_os_string();
    paused.push(".paused");
    let _ = File::create(&paused);
    trace::step(|| format!("test pause before breaking {}", lock_path.display()));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !gate.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Releases a lock we hold. Errors with `LockLost` text when the lock was broken or
/// replaced from outside meanwhile (then nothing is removed).
pub fn release(held: HeldDir) -> Result<(), ReleaseError> {
    let lost = || {
        ReleaseError::Lost(format!(
            "{} no longer holds our info file",
            held.lock_path.display()
        ))
    };
    let ours = held
        .info_file
        .metadata()
        .map_err(|e| ReleaseError::Io(held.lock_path.clone(), e))?;
    match fs::symlink_metadata(held.lock_path.join("info")) {
        Ok(current) if file_id(&current) == file_id(&ours) => {}
        Ok(_) => return Err(lost()),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            return Err(lost());
        }
        Err(e) => return Err(ReleaseError::Io(held.lock_path.clone(), e)),
    }
    let released = held
        .lock_dir
        .join(format!(".released-{}-{}", held.hex, held.nonce));
    match fs::rename(&held.lock_path, &released) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(lost()),
        Err(e) => return Err(ReleaseError::Io(held.lock_path.clone(), e)),
    }
    // The lock is free from the rename on; the flock goes next, because it is what a
    // waiter blocks on, and it need not wait for the clean-up below. A waiter that
    // wakes on the renamed `info` re-checks the lock path's identity and finds it gone
    // or somebody else's, and `cleanup` treats `.released-*` as garbage either way.
    drop(held.info_file);
    trace::step(|| format!("released {}", held.lock_path.display()));
    // The dir holds only `info` unless someone put more there.
    let _ = fs::remove_file(released.join("info"));
    if fs::remove_dir(&released).is_err() {
        remove_private_dir(&released);
    }
    Ok(())
}

#[derive(Debug)]
pub enum ReleaseError {
    Lost(String),
    Io(PathBuf, io::Error),
}
