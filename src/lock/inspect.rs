//! Looking at locks from outside, for `status`, `show`, `cleanup`, `unlock` and
//! `release`: verdicts with their proof, shared readers, garbage, lock ids, and removal
//! of a lock by someone other than its holder.
//!
//! Verdicts come from [`super::dir::probe`]; dead locks are removed with
//! [`super::dir::break_dead`]. Nothing here decides liveness on its own.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{Mode as FileMode, OFlags};

use super::dir::{self, DeadEvidence, INFOLESS_GRACE, Judge, Probe};
use super::info::Info;
use super::key::hex_digest;
use crate::sys;
use crate::trace;

/// What a lock is, as `status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Free,
    Held,
    Stale,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Free => "free",
            State::Held => "held",
            State::Stale => "stale",
        }
    }
}

/// Processes holding `LOCK_SH` on a key's `<hex>.rw` gate (shared lockrun holders).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readers {
    /// Their PIDs, where the OS tells (Linux `/proc/locks`).
    pub pids: Vec<u32>,
    /// Readers are present but the OS cannot say who they are.
    pub unknown: bool,
}

impl Readers {
    pub fn any(&self) -> bool {
        self.unknown || !self.pids.is_empty()
    }
}

/// Everything a look at one lock found.
#[derive(Debug)]
pub struct LockReport {
    /// `<lockdir>/<hex>.lock`
    pub lock_path: PathBuf,
    pub state: State,
    pub info: Option<Info>,
    /// When the holder wrote its `info` (or made the directory, when there is none).
    pub since: Option<SystemTime>,
    /// How a held lock is known to be alive: `flock` (the holder keeps the `info` flock),
    /// `pid` (its PID runs, with the recorded start token), `host` (another host: not
    /// checkable), `creating` (no info yet, within the grace period), `readers` (shared
    /// holders only).
    pub liveness: Option<&'static str>,
    /// For a stale lock, the proof; for a held one, what keeps it alive.
    pub reason: Option<String>,
    pub readers: Readers,
}

/// A look at a lock plus what it takes to act on it.
#[derive(Debug)]
pub struct Look {
    pub report: LockReport,
    /// For a stale lock: the proof to hand to [`dir::break_dead`].
    pub evidence: Option<DeadEvidence>,
}

/// `<lockdir>/<hex>.rw` for `<lockdir>/<hex>.lock`.
pub fn gate_path(lock_path: &Path) -> PathBuf {
    let name = lock_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let hex = name.strip_suffix(".lock").unwrap_or(&name);
    lock_path.with_file_name(format!("{hex}.rw"))
}

/// Looks at the lock at `lock_path` (and its shared readers) without taking it.
pub fn look(lock_path: &Path, judge: &Judge) -> io::Result<Look> {
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
                look.report.liveness = Some("readers");
                look.report.reason = Some(format!("{count} keep LOCK_SH on the reader gate"));
            }
            State::Stale => {
                // The directory lock is dead, but live readers still hold the file.
                let proof = look.report.reason.take().unwrap_or_default();
                look.report.state = State::Held;
                look.report.liveness = Some("readers");
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

fn why_alive(
    info: Option<&Info>,
    flocked: bool,
    since: Option<SystemTime>,
) -> (&'static str, String) {
    if flocked {
        return (
            "flock",
            "the holder keeps the flock on its info file".into(),
        );
    }
    let age = since
        .and_then(|t| t.elapsed().ok())
        .map(super::format_age)
        .unwrap_or_else(|| "0s".into());
    let Some(info) = info else {
        return (
            "creating",
            format!("being created: no info file yet ({age} old, grace 2s)"),
        );
    };
    let Some(pid) = info.pid else {
        return (
            "creating",
            format!("being created: no PID in the info file yet ({age} old, grace 2s)"),
        );
    };
    let here = sys::hostname();
    if let Some(host) = info.hostname.as_deref()
        && host != here
    {
        return (
            "host",
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
    ("pid", format!("PID {pid} is running{token}"))
}

/// The shared holders of the gate at `rw_path`.
pub fn readers(rw_path: &Path) -> io::Result<Readers> {
    let meta = match fs::symlink_metadata(rw_path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Readers::default()),
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        return Ok(Readers::default());
    }
    match sys::proc_locks::flock_holders(meta.dev(), meta.ino()) {
        Ok(holders) => {
            let mut pids: Vec<u32> = holders
                .iter()
                .filter(|h| h.shared && !h.waiting)
                .map(|h| h.pid)
                .collect();
            pids.sort_unstable();
            pids.dedup();
            Ok(Readers {
                pids,
                unknown: false,
            })
        }
        Err(_) => {
            // No /proc/locks: a try of LOCK_EX tells whether anyone holds LOCK_SH.
            let file = match open_file_nofollow(rw_path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Readers::default()),
                Err(e) => return Err(e),
            };
            match file.try_lock() {
                Ok(()) => Ok(Readers::default()),
                Err(fs::TryLockError::WouldBlock) => Ok(Readers {
                    pids: Vec::new(),
                    unknown: true,
                }),
                Err(fs::TryLockError::Error(e)) => Err(e),
            }
        }
    }
}

/// What an entry of a lock directory is, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `<hex>.lock`
    Lock { hex: String },
    /// `<hex>.rw`
    Gate { hex: String },
    /// `.tmp-<hex>-*`, `.stale-<hex>-*`, `.released-<hex>-*`
    Garbage { kind: GarbageKind, hex: String },
    /// Anything else: not lockrun's, never touched.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GarbageKind {
    Tmp,
    Stale,
    Released,
}

impl GarbageKind {
    /// Why such an entry is left over.
    pub fn origin(self) -> &'static str {
        match self {
            GarbageKind::Tmp => "unfinished lock creation",
            GarbageKind::Stale => "half-removed dead lock",
            GarbageKind::Released => "half-removed released lock",
        }
    }
}

pub fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Classifies a lock directory entry by name.
pub fn classify(name: &OsStr) -> Entry {
    let Some(name) = name.to_str() else {
        return Entry::Other;
    };
    if let Some(hex) = name.strip_suffix(".lock")
        && is_hex64(hex)
    {
        return Entry::Lock { hex: hex.into() };
    }
    if let Some(hex) = name.strip_suffix(".rw")
        && is_hex64(hex)
    {
        return Entry::Gate { hex: hex.into() };
    }
    for (prefix, kind) in [
        (".tmp-", GarbageKind::Tmp),
        (".stale-", GarbageKind::Stale),
        (".released-", GarbageKind::Released),
    ] {
        if let Some(rest) = name.strip_prefix(prefix)
            && rest.len() > 65
            && is_hex64(&rest[..64])
            && rest.as_bytes()[64] == b'-'
        {
            return Entry::Garbage {
                kind,
                hex: rest[..64].into(),
            };
        }
    }
    Entry::Other
}

/// What became of (or would become of) one leftover entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GarbageState {
    /// Removed by us; the text says why it was garbage.
    Removed(String),
    /// Would be removed (dry run).
    Removable(String),
    /// Its `info` flock is held: a process is still working on it.
    InUse,
    /// Changed within the grace period: a process may still be working on it.
    Young(Duration),
    /// Gone before we got to it, or taken by another cleaner.
    Gone,
    /// Not a directory (a symlink or a file with a lockrun-like name): never touched.
    NotADir,
}

/// Judges the leftover `path` (`.tmp-*`, `.stale-*`, `.released-*`) and, unless
/// `dry_run`, removes it once its `info` flock can be taken and it has not changed for
/// the grace period. The entry is first renamed to a fresh name, so of several cleaners
/// exactly one removes (and counts) it.
pub fn sweep_garbage(
    path: &Path,
    kind: GarbageKind,
    hex: &str,
    dry_run: bool,
) -> io::Result<GarbageState> {
    let dir = match super::dir::open_nofollow_dir(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(GarbageState::Gone),
        Err(e)
            if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            return Ok(GarbageState::NotADir);
        }
        Err(e) => return Err(e),
    };
    let dir_meta = File::from(dir.try_clone()?).metadata()?;
    let info = match super::dir::open_info_in(&dir) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if let Some(file) = &info {
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(GarbageState::InUse),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
    // The directory's mtime moves whenever an entry is added or removed in it, so a
    // process that is still creating or removing it keeps it young.
    let age = dir_meta
        .modified()
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default();
    if age < INFOLESS_GRACE {
        return Ok(GarbageState::Young(age));
    }
    let why = format!(
        "{} ({}, {} old)",
        kind.origin(),
        if info.is_some() {
            "its info flock is free"
        } else {
            "no info file"
        },
        super::format_age(age)
    );
    if dry_run {
        return Ok(GarbageState::Removable(why));
    }
    let Some(lock_dir) = path.parent() else {
        return Ok(GarbageState::Gone);
    };
    // Still the directory we judged?
    match fs::symlink_metadata(path) {
        Ok(m) if (m.dev(), m.ino()) == (dir_meta.dev(), dir_meta.ino()) => {}
        Ok(_) => return Ok(GarbageState::Gone),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(GarbageState::Gone),
        Err(e) => return Err(e),
    }
    let grave = lock_dir.join(format!(".stale-{hex}-{}", dir::new_nonce()));
    match fs::rename(path, &grave) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(GarbageState::Gone),
        Err(e) => return Err(e),
    }
    match fs::remove_dir_all(&grave) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(GarbageState::Gone),
        Err(e) => return Err(e),
    }
    drop(info);
    trace::step(|| format!("removed garbage {}", path.display()));
    Ok(GarbageState::Removed(why))
}

/// A checked lock id: `<lockdir>/<64 lowercase hex>.lock`, not a symlink, in a real
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockId {
    pub lock_dir: PathBuf,
    pub lock_path: PathBuf,
    pub hex: String,
}

/// Checks a lock id given on the command line; the error says what is wrong with it.
/// Nothing is created or removed. A lock that does not exist (any more) is an
/// `io::ErrorKind::NotFound` error; every other refusal is `InvalidInput`.
pub fn parse_lock_id(id: &OsStr) -> io::Result<LockId> {
    let refuse = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_string());
    let bytes = id.as_bytes();
    if bytes.is_empty() {
        return Err(refuse("it is empty"));
    }
    if bytes.iter().any(|b| b.is_ascii_control()) {
        return Err(refuse(
            "it contains a line break or another control character",
        ));
    }
    let path = Path::new(id);
    let Some(Component::Normal(name)) = path.components().next_back() else {
        return Err(refuse("it does not end in a <64 hex>.lock name"));
    };
    let hex = match name.to_str().and_then(|n| n.strip_suffix(".lock")) {
        Some(hex) if is_hex64(hex) => hex.to_string(),
        _ => return Err(refuse("its name is not <64 lowercase hex>.lock")),
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let lock_dir = fs::canonicalize(&parent).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("its lock directory {}: {e}", parent.display()),
        )
    })?;
    if !lock_dir.is_dir() {
        return Err(refuse("its parent is not a directory"));
    }
    let lock_path = lock_dir.join(format!("{hex}.lock"));
    match fs::symlink_metadata(&lock_path) {
        Ok(m) if m.file_type().is_symlink() => Err(refuse("it is a symlink, not a lock directory")),
        Ok(m) if !m.is_dir() => Err(refuse("it is not a directory")),
        Ok(_) => Ok(LockId {
            lock_dir,
            lock_path,
            hex,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no such lock (released already, or broken as stale)",
        )),
        Err(e) => Err(e),
    }
}

/// A lock opened for removal by someone other than its holder.
#[derive(Debug)]
pub struct Opened {
    pub lock_path: PathBuf,
    pub info: Option<Info>,
    /// The `info` file, flocked when `flocked`.
    file: Option<File>,
    pub flocked: bool,
    dir_id: (u64, u64),
}

/// Opens the lock at `lock_path` and reads its `info`. Takes the `info` flock when it
/// is free (a prober may hold it for an instant: retried for up to `patience`); a lock
/// whose holder keeps it stays unflocked (`flocked == false`).
pub fn open_lock(lock_path: &Path, patience: Duration) -> io::Result<Opened> {
    let dir = super::dir::open_nofollow_dir(lock_path)?;
    let dir_meta = File::from(dir.try_clone()?).metadata()?;
    let file = match super::dir::open_info_in(&dir) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut flocked = false;
    if let Some(f) = &file {
        let deadline = std::time::Instant::now() + patience;
        loop {
            match f.try_lock() {
                Ok(()) => {
                    flocked = true;
                    break;
                }
                Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(fs::TryLockError::WouldBlock) => break,
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }
    let info = match &file {
        Some(f) => Some(Info::read_from(f)?),
        None => None,
    };
    Ok(Opened {
        lock_path: lock_path.to_path_buf(),
        info,
        file,
        flocked,
        dir_id: (dir_meta.dev(), dir_meta.ino()),
    })
}

impl Opened {
    /// The `info`'s `TARGET` names a file whose lock is not this one (a forged or
    /// misplaced lock directory).
    pub fn target_mismatch(&self, hex: &str) -> Option<String> {
        let target = self.info.as_ref()?.target.as_deref()?;
        // A name that is not UTF-8 was written lossily: its bytes cannot be checked.
        if target.contains('\u{FFFD}') {
            return None;
        }
        (hex_digest(target.as_bytes()) != hex).then(|| target.to_string())
    }

    /// Removes the opened lock: re-checks that `<lock>` and its `info` are still the
    /// ones opened (dev, inode), renames the directory to `<lockdir>/<prefix>-<hex>-<nonce>`
    /// and removes it. Returns false (touching nothing) when the lock changed meanwhile.
    ///
    /// With the `info` flock held, no other breaker can act between the check and the
    /// rename. Without it (forcing out a live flock holder) a re-created lock could in
    /// theory be renamed in that instant: the renamed directory's `info` is checked
    /// again and put back if it is not the one opened.
    pub fn remove(self, prefix: &str, hex: &str) -> io::Result<bool> {
        let lock_dir = self.lock_path.parent().unwrap_or(Path::new("/"));
        let grave = lock_dir.join(format!("{prefix}-{hex}-{}", dir::new_nonce()));
        let Some(file) = &self.file else {
            // An info-less directory: rmdir only, so one that got its info meanwhile
            // stays.
            if !same_dir(&self.lock_path, self.dir_id)? {
                return Ok(false);
            }
            return match fs::remove_dir(&self.lock_path) {
                Ok(()) => Ok(true),
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.kind() == io::ErrorKind::DirectoryNotEmpty =>
                {
                    Ok(false)
                }
                Err(e) => Err(e),
            };
        };
        let ours = file.metadata()?;
        let ours_id = (ours.dev(), ours.ino());
        if ours.nlink() == 0
            || !same_dir(&self.lock_path, self.dir_id)?
            || info_id(&self.lock_path)? != Some(ours_id)
        {
            return Ok(false);
        }
        match fs::rename(&self.lock_path, &grave) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        }
        if !self.flocked && info_id(&grave)? != Some(ours_id) {
            // Not the lock we opened: put it back where its holder expects it.
            let _ = sys::rename_noreplace(&grave, &self.lock_path);
            return Ok(false);
        }
        let _ = fs::remove_dir_all(&grave);
        drop(self.file);
        Ok(true)
    }
}

fn same_dir(path: &Path, id: (u64, u64)) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(m.is_dir() && (m.dev(), m.ino()) == id),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn info_id(lock_path: &Path) -> io::Result<Option<(u64, u64)>> {
    match fs::symlink_metadata(lock_path.join("info")) {
        Ok(m) => Ok(Some((m.dev(), m.ino()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn open_file_nofollow(path: &Path) -> io::Result<File> {
    let fd = rustix::fs::openat(
        rustix::fs::CWD,
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        FileMode::empty(),
    )?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_entries() {
        let hex = "a".repeat(64);
        assert_eq!(
            classify(OsStr::new(&format!("{hex}.lock"))),
            Entry::Lock { hex: hex.clone() }
        );
        assert_eq!(
            classify(OsStr::new(&format!("{hex}.rw"))),
            Entry::Gate { hex: hex.clone() }
        );
        assert_eq!(
            classify(OsStr::new(&format!(".stale-{hex}-1f"))),
            Entry::Garbage {
                kind: GarbageKind::Stale,
                hex: hex.clone()
            }
        );
        assert_eq!(
            classify(OsStr::new(&format!("{}.lock", "A".repeat(64)))),
            Entry::Other
        );
        assert_eq!(classify(OsStr::new(".tmp-abc-1")), Entry::Other);
        assert_eq!(classify(OsStr::new("notes.txt")), Entry::Other);
    }

    #[test]
    fn refuses_hostile_ids() {
        for id in ["", "/", "..", ".", "a\nb", "x.lock", "/tmp/../"] {
            let err = parse_lock_id(OsStr::new(id)).expect_err(id);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{id:?}: {err}");
        }
    }
}
