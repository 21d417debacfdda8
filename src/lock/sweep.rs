//! `cleanup`'s garbage sweep: judging a leftover `.tmp-*`, `.stale-*` or
//! `.released-*` entry and removing it (through [`super::removal`]) once nobody works on
//! it.

use std::io;
use std::path::Path;
use std::time::Duration;

use super::dir::{self, INFOLESS_GRACE};
use super::entry::GarbageKind;
use super::flock;
use super::removal::{self, Grave, Identity};
use crate::trace;

/// What became of (or would become of) one leftover entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GarbageState {
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
pub(crate) fn sweep_garbage(
    path: &Path,
    kind: GarbageKind,
    hex: &str,
    dry_run: bool,
) -> io::Result<GarbageState> {
    let dir = match flock::open_dir_nofollow(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(GarbageState::Gone),
        Err(e) if flock::is_not_a_lock(&e) => {
            #[cfg(windows)]
            if let Some(state) = sweep_info_grave(path, kind, dry_run)? {
                return Ok(state);
            }
            return Ok(GarbageState::NotADir);
        }
        Err(e) => return Err(e),
    };
    let dir_meta = flock::dir_metadata(&dir)?;
    // What the protocol never makes is not garbage of ours: left as it is.
    if !super::removal::only_info(path)? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "it holds files other than info",
        ));
    }
    let info = match flock::open_info_in(&dir) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if let Some(file) = &info
        && !file.metadata()?.is_file()
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "its info is not a regular file",
        ));
    }
    if let Some(file) = &info
        && !flock::try_lock(file)?
    {
        return Ok(GarbageState::InUse);
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
    // Still the directory we judged? Renamed to a fresh grave, so that of several
    // cleaners exactly one removes (and counts) it.
    let id = Identity {
        dir: Some(flock::dir_id(&dir)?),
        info: None,
    };
    let grave = removal::grave_path(lock_dir, Grave::Stale, hex, &dir::new_nonce());
    if !removal::bury(path, &id, &grave)? {
        return Ok(GarbageState::Gone);
    }
    removal::remove_grave(&grave)?;
    drop(info);
    trace::step(|| format!("removed garbage {}", path.display()));
    Ok(GarbageState::Removed(why))
}

/// Windows: a lock released or broken there leaves its `info` file itself as the grave
/// (`sys/windows`: a directory with an open file cannot be renamed). A leftover one (its
/// remover died at that instant) is removed once its lock can be taken and it has not
/// changed for the grace period. `None`: not such a file.
#[cfg(windows)]
fn sweep_info_grave(
    path: &Path,
    kind: GarbageKind,
    dry_run: bool,
) -> io::Result<Option<GarbageState>> {
    let file = match flock::open_file_nofollow(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(GarbageState::Gone)),
        Err(e) if flock::is_not_a_lock(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !flock::try_lock(&file)? {
        return Ok(Some(GarbageState::InUse));
    }
    let age = file
        .metadata()?
        .modified()
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default();
    if age < INFOLESS_GRACE {
        return Ok(Some(GarbageState::Young(age)));
    }
    let why = format!(
        "{} (an info file whose lock is free, {} old)",
        kind.origin(),
        super::format_age(age)
    );
    if dry_run {
        return Ok(Some(GarbageState::Removable(why)));
    }
    // Delete-on-close semantics: the name goes once every handle (ours too) is closed.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(GarbageState::Gone)),
        Err(e) => return Err(e),
    }
    drop(file);
    trace::step(|| format!("removed garbage {}", path.display()));
    Ok(Some(GarbageState::Removed(why)))
}
