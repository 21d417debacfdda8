//! Removing a lock directory: the one place that takes a lock away from its name.
//!
//! Every removal (a taker breaking a dead lock, a holder releasing its own, `unlock` and
//! `release` from outside, `cleanup` sweeping a leftover) goes the same way: check that
//! the name still holds what was judged ([`still_same`]), rename it to a private grave
//! `<lockdir>/.<kind>-<hex>-<nonce>` (so that of several removers exactly one wins, and
//! the name is free at once), then delete the grave. A lock directory without `info` is
//! only ever `rmdir`ed, so one that got its `info` meanwhile stays.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::dir::{self, DeadEvidence};
use super::flock::{self, FileId};
use super::info::Info;
use super::key::hex_of_target;
use crate::sys;
use crate::trace;

/// What a lock directory was when it was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The directory itself, when known.
    pub(crate) dir: Option<FileId>,
    /// Its `info` file, when it has one. An `info` we hold open cannot have its inode
    /// reused, so an unlinked one never matches whatever took its name.
    pub(crate) info: Option<FileId>,
}

/// Why a grave exists; its name's prefix, which `cleanup` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grave {
    /// A dead lock broken, or a leftover swept, or a live one forced out.
    Stale,
    /// A lock released by its holder (or by `release`).
    Released,
}

/// `<lockdir>/.<kind>-<hex>-<nonce>`.
pub(crate) fn grave_path(lock_dir: &Path, kind: Grave, hex: &str, nonce: &str) -> PathBuf {
    let prefix = match kind {
        Grave::Stale => ".stale",
        Grave::Released => ".released",
    };
    lock_dir.join(format!("{prefix}-{hex}-{nonce}"))
}

/// The identity check: `path` is still the directory that was judged (not a symlink
/// or a file in its place) and, when known, still holds the same `info`.
pub(crate) fn still_same(path: &Path, id: &Identity) -> io::Result<bool> {
    let dir = match flock::open_dir_nofollow(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound || flock::is_not_a_lock(&e) => {
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    if let Some(want) = id.dir
        && flock::dir_id(&dir)? != want
    {
        return Ok(false);
    }
    if let Some(want) = id.info
        && flock::info_id_in(&dir)? != Some(want)
    {
        return Ok(false);
    }
    Ok(true)
}

/// Renames `path` to `grave` if it is still `id`. `Ok(false)`: it changed or is gone,
/// and nothing was touched.
#[cfg(unix)]
pub(crate) fn bury(path: &Path, id: &Identity, grave: &Path) -> io::Result<bool> {
    if !still_same(path, id)? {
        return Ok(false);
    }
    match std::fs::rename(path, grave) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Windows: a directory with an open file in it cannot be renamed, and the `info` of a
/// lock is open (its holder's, the breaker's). So the `info` file itself moves out to
/// the grave (a file there), which frees the lock at once; the emptied directory is
/// then removed. An info-less directory (a leftover) has nothing open and is renamed
/// whole. `Ok(false)`: it changed or is gone, and nothing was touched.
#[cfg(windows)]
pub(crate) fn bury(path: &Path, id: &Identity, grave: &Path) -> io::Result<bool> {
    if !still_same(path, id)? {
        return Ok(false);
    }
    let from = if id.info.is_some() {
        path.join("info")
    } else {
        path.to_path_buf()
    };
    match std::fs::rename(&from, grave) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    if id.info.is_some() {
        // Empty now. Should it fail (a scanner has it open), the info-less leftover is
        // removed by the next prober after INFOLESS_GRACE.
        let _ = std::fs::remove_dir(path);
    }
    Ok(true)
}

/// True when the grave still holds the `info` that was judged.
fn grave_holds(grave: &Path, info: Option<FileId>) -> io::Result<bool> {
    #[cfg(unix)]
    {
        still_same(grave, &Identity { dir: None, info })
    }
    #[cfg(windows)]
    {
        match flock::open_file_nofollow(grave) {
            Ok(f) => Ok(Some(flock::id_of(&f)?) == info),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Puts a grave back where its holder expects it.
fn unbury(grave: &Path, lock_path: &Path) {
    #[cfg(unix)]
    {
        let _ = sys::rename_noreplace(grave, lock_path);
    }
    #[cfg(windows)]
    {
        let _ = std::fs::create_dir(lock_path);
        let _ = sys::rename_noreplace(grave, &lock_path.join("info"));
    }
}

/// Deletes a grave (only its remover knows its name): its `info`, then the directory
/// (on Windows the grave normally is the `info` file itself).
/// Never recurses: anything else in it (which the protocol never creates) makes the
/// `rmdir` fail and stays, for a human to look at.
pub(crate) fn remove_grave(grave: &Path) -> io::Result<()> {
    #[cfg(windows)]
    if std::fs::remove_file(grave).is_ok() {
        return Ok(());
    }
    match std::fs::remove_file(grave.join("info")) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    match std::fs::remove_dir(grave) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether the directory `dir` holds nothing but (at most) an `info` entry: all that
/// the lock protocol ever puts in a lock, staging or leftover directory.
pub(crate) fn only_info(dir: &Path) -> io::Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        if entry?.file_name() != "info" {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `rmdir` of a lock directory without `info`, if it is still the directory `dir_id`:
/// one that got its `info` meanwhile is not empty and stays.
pub(crate) fn remove_infoless(path: &Path, dir_id: FileId) -> io::Result<bool> {
    let id = Identity {
        dir: Some(dir_id),
        info: None,
    };
    if !still_same(path, &id)? {
        return Ok(false);
    }
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(true),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                || e.kind() == io::ErrorKind::DirectoryNotEmpty =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Removes a dead lock. Returns false when it changed under us (someone else broke or
/// re-created it): the caller simply probes again.
pub(crate) fn break_dead(
    lock_path: &Path,
    evidence: DeadEvidence,
    lock_dir: &Path,
    hex: &str,
) -> io::Result<bool> {
    match evidence {
        DeadEvidence::Info {
            file,
            dir_id,
            command,
        } => {
            if let Some((pid, start, pgid)) = command
                && !dir::end_orphaned_command(pid, &start, pgid)
            {
                // Still running after SIGKILL: not ours to take yet; probe again.
                return Ok(false);
            }
            test_hooks::pause_before_break(lock_path);
            let id = Identity {
                dir: Some(dir_id),
                info: Some(flock::id_of(&file)?),
            };
            let grave = grave_path(lock_dir, Grave::Stale, hex, &dir::new_nonce());
            if !bury(lock_path, &id, &grave)? {
                trace::step(|| "break: lock changed since the probe; not touching it".into());
                return Ok(false);
            }
            trace::step(|| format!("broke dead lock {}", lock_path.display()));
            let _ = remove_grave(&grave);
            drop(file);
            Ok(true)
        }
        DeadEvidence::Infoless { dir_id } => {
            let removed = remove_infoless(lock_path, dir_id)?;
            if removed {
                trace::step(|| format!("removed info-less lock {}", lock_path.display()));
            }
            Ok(removed)
        }
    }
}

/// A lock opened for removal by someone other than its holder (`unlock --force`,
/// `release`).
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) lock_path: PathBuf,
    pub(crate) info: Option<Info>,
    /// The `info` file, flocked when `flocked`.
    file: Option<File>,
    pub(crate) flocked: bool,
    dir_id: FileId,
}

/// Opens the lock at `lock_path` and reads its `info`. Takes the `info` flock when it
/// is free (a prober may hold it for an instant: retried for up to `patience`); a lock
/// whose holder keeps it stays unflocked (`flocked == false`).
pub(crate) fn open_lock(lock_path: &Path, patience: Duration) -> io::Result<Opened> {
    let dir = flock::open_dir_nofollow(lock_path)?;
    let dir_id = flock::dir_id(&dir)?;
    let file = match flock::open_info_in(&dir) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut flocked = false;
    if let Some(f) = &file {
        let deadline = std::time::Instant::now() + patience;
        loop {
            if flock::try_lock(f)? {
                flocked = true;
                break;
            }
            if std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
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
        dir_id,
    })
}

impl Opened {
    /// Why this is not a lock lockrun's protocol made (and so must not be removed by
    /// `release`, even with --force): no `info`, an `info` that is not a regular file
    /// or not lock info (no PID, ACQUIRED and HOSTNAME lines), or other files beside it.
    pub(crate) fn not_protocol(&self) -> io::Result<Option<String>> {
        let Some(file) = &self.file else {
            return Ok(Some("it has no info file".into()));
        };
        if !file.metadata()?.is_file() {
            return Ok(Some("its info is not a regular file".into()));
        }
        let complete = self
            .info
            .as_ref()
            .is_some_and(|i| i.pid.is_some() && i.acquired.is_some() && i.hostname.is_some());
        if !complete {
            return Ok(Some(
                "its info is not lock info (no PID, ACQUIRED and HOSTNAME lines)".into(),
            ));
        }
        if !only_info(&self.lock_path)? {
            return Ok(Some("it holds files other than info".into()));
        }
        Ok(None)
    }

    /// The `info`'s `TARGET` names a file whose lock is not this one (a forged or
    /// misplaced lock directory).
    pub(crate) fn target_mismatch(&self, hex: &str) -> Option<String> {
        let target = self.info.as_ref()?.target.as_deref()?;
        // A name that is not UTF-8 was written lossily: its bytes cannot be checked.
        if target.contains('\u{FFFD}') {
            return None;
        }
        (hex_of_target(Path::new(target)) != hex).then(|| target.to_string())
    }

    /// Removes the opened lock if it is still the one opened, through a grave of `kind`.
    /// Returns false (touching nothing) when the lock changed meanwhile.
    ///
    /// With the `info` flock held, no other breaker can act between the check and the
    /// rename. Without it (forcing out a live flock holder) a re-created lock could in
    /// theory be renamed in that instant: the grave's `info` is checked again and put
    /// back if it is not the one opened.
    pub(crate) fn remove(self, kind: Grave, hex: &str) -> io::Result<bool> {
        let Some(file) = &self.file else {
            return remove_infoless(&self.lock_path, self.dir_id);
        };
        let lock_dir = self.lock_path.parent().unwrap_or(Path::new("/"));
        let grave = grave_path(lock_dir, kind, hex, &dir::new_nonce());
        let id = Identity {
            dir: Some(self.dir_id),
            info: Some(flock::id_of(file)?),
        };
        if !bury(&self.lock_path, &id, &grave)? {
            return Ok(false);
        }
        if !self.flocked && !grave_holds(&grave, id.info)? {
            // Not the lock we opened: put it back where its holder expects it.
            unbury(&grave, &self.lock_path);
            return Ok(false);
        }
        let _ = remove_grave(&grave);
        drop(self.file);
        Ok(true)
    }
}

/// Test hooks, compiled only into debug builds (what `cargo test` runs); the release
/// build, which is what ships, has none.
mod test_hooks {
    use std::path::Path;

    /// With `LOCKRUN_TEST_BREAK_PAUSE=PATH`, a breaker that has judged a lock dead
    /// creates `PATH.paused` and waits (at most 30 s) for `PATH` to exist, so a test can
    /// re-create the lock meanwhile and check that the breaker leaves the new one alone.
    #[cfg(debug_assertions)]
    pub(super) fn pause_before_break(lock_path: &Path) {
        use std::path::PathBuf;
        use std::time::{Duration, Instant};
        let Some(gate) = std::env::var_os("LOCKRUN_TEST_BREAK_PAUSE") else {
            return;
        };
        let gate = PathBuf::from(gate);
        let mut paused = gate.clone().into_os_string();
        paused.push(".paused");
        let _ = std::fs::File::create(&paused);
        crate::trace::step(|| format!("test pause before breaking {}", lock_path.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !gate.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[cfg(not(debug_assertions))]
    pub(super) fn pause_before_break(_lock_path: &Path) {}
}
