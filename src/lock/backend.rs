//! Where a lock lives: the one boundary between the acquire loop (`lock/mod.rs`:
//! waiting, saying so, giving up, breaking the dead) and the place that holds the lock.
//!
//! Today that place is a lock directory on a local filesystem, [`LocalDir`], with the
//! protocol of `dir.rs` and `removal.rs`. A second backend (a network lock service, a
//! Windows engine) implements [`Backend`] with its own proof of death and its own way
//! to wait, and the loop stays as it is.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::dir::{self, DeadEvidence, HeldDir, Judge, Probe, ReleaseError, Staged};
use super::flock;
use super::info::Info;
use super::removal;

/// One lock's place, as the acquire loop sees it.
pub(crate) trait Backend {
    /// A lock this process holds.
    type Held;
    /// The proof that a lock is dead, enough to remove it without harming a live one.
    type Evidence;
    /// Something to block on while a live holder keeps the lock.
    type Waiter;

    /// Where this backend's locks live (named in "cannot create" errors).
    fn location(&self) -> &Path;
    /// This lock (named in errors about it).
    fn name(&self) -> &Path;
    /// A cheap look: the lock seems free, so taking it is worth a try.
    fn seems_free(&self) -> bool;
    /// Takes the lock if nobody holds it (`None`: somebody does).
    fn try_take(&mut self, info: &Info) -> io::Result<Option<Self::Held>>;
    /// Looks at the lock: free, alive (with a waiter, when there is one) or dead.
    fn probe(&self, judge: &Judge) -> io::Result<Probe<Self::Evidence, Self::Waiter>>;
    /// Removes a dead lock; `false` when it changed meanwhile (look again).
    fn break_dead(&self, evidence: Self::Evidence) -> io::Result<bool>;
    /// Blocks on `waiter` until the holder lets go (`true`) or `until` passes.
    fn wait(&self, waiter: Self::Waiter, until: Option<Instant>) -> io::Result<bool>;
    /// Releases a lock this process holds.
    fn release(held: Self::Held) -> Result<(), ReleaseError>;
}

/// A lock directory `<lockdir>/<hex>.lock` on a local filesystem.
#[derive(Debug)]
pub(crate) struct LocalDir {
    lock_dir: PathBuf,
    lock_path: PathBuf,
    hex: String,
    /// The prepared directory kept from one attempt to the next (see [`Staged`]).
    staged: Option<Staged>,
}

impl LocalDir {
    pub(crate) fn new(lock_dir: &Path, hex: &str) -> Self {
        LocalDir {
            lock_dir: lock_dir.to_path_buf(),
            lock_path: lock_dir.join(format!("{hex}.lock")),
            hex: hex.to_string(),
            staged: None,
        }
    }
}

impl Backend for LocalDir {
    type Held = HeldDir;
    type Evidence = DeadEvidence;
    type Waiter = File;

    fn location(&self) -> &Path {
        &self.lock_dir
    }

    fn name(&self) -> &Path {
        &self.lock_path
    }

    fn seems_free(&self) -> bool {
        fs::symlink_metadata(&self.lock_path).is_err()
    }

    fn try_take(&mut self, info: &Info) -> io::Result<Option<HeldDir>> {
        dir::publish(&self.lock_dir, &self.hex, info, &mut self.staged)
    }

    fn probe(&self, judge: &Judge) -> io::Result<Probe> {
        dir::probe(&self.lock_path, judge)
    }

    fn break_dead(&self, evidence: DeadEvidence) -> io::Result<bool> {
        removal::break_dead(&self.lock_path, evidence, &self.lock_dir, &self.hex)
    }

    fn wait(&self, waiter: File, until: Option<Instant>) -> io::Result<bool> {
        flock::wait_flock(&waiter, true, until)
    }

    fn release(held: HeldDir) -> Result<(), ReleaseError> {
        dir::release(held)
    }
}
