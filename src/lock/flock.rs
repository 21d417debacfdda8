//! Every raw open and flock(2) call on a lock's files, in one place (as cargo keeps
//! its file locks in `util/flock.rs`). `clippy.toml` disallows these calls everywhere
//! else, so a new caller has to come through here and inherit its flags: `O_NOFOLLOW`
//! (never through a planted link), `O_CLOEXEC` (a command never inherits a lock by
//! accident), `O_NONBLOCK` (opening a FIFO planted as `info` does not hang).
#![allow(clippy::disallowed_methods)]

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use rustix::fs::{AtFlags, Mode as FileMode, OFlags};

/// (device, inode): what tells one file from another that took its name.
pub(crate) type FileId = (u64, u64);

pub(crate) fn file_id(meta: &fs::Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

/// A `DirBuilder` for lock directories: mode 0755 under the umask.
pub(crate) fn dir_builder() -> fs::DirBuilder {
    use std::os::unix::fs::DirBuilderExt;
    let mut b = fs::DirBuilder::new();
    b.mode(0o755);
    b
}

/// The identity of an open file.
pub(crate) fn id_of(file: &File) -> io::Result<FileId> {
    Ok(file_id(&file.metadata()?))
}

/// True for the errors that say "a symlink or a file is in the place of a lock directory
/// or its `info`" (`O_NOFOLLOW` and `O_DIRECTORY` refusing).
pub(crate) fn is_not_a_lock(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR))
}

/// The directory at `path`, not following a symlink in its place.
pub(crate) fn open_dir_nofollow(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        rustix::fs::CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        FileMode::empty(),
    )?)
}

/// The identity of an open directory.
pub(crate) fn dir_id(dir: &OwnedFd) -> io::Result<FileId> {
    Ok(stat_id(&rustix::fs::fstat(dir)?))
}

// `st_dev` and `st_ino` are u64 on Linux but narrower or signed elsewhere (macOS).
#[allow(clippy::unnecessary_cast)]
fn stat_id(st: &rustix::fs::Stat) -> FileId {
    (st.st_dev as u64, st.st_ino as u64)
}

/// The metadata of an open directory (its mtime is a lock's age).
pub(crate) fn dir_metadata(dir: &OwnedFd) -> io::Result<fs::Metadata> {
    File::from(dir.try_clone()?).metadata()
}

/// The `info` file of the lock directory `dir`, for reading.
pub(crate) fn open_info_in(dir: &OwnedFd) -> io::Result<File> {
    let fd = rustix::fs::openat(
        dir,
        "info",
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        FileMode::empty(),
    )?;
    Ok(File::from(fd))
}

/// The identity of the `info` entry in `dir` (a symlink's own), `None` when there is none.
pub(crate) fn info_id_in(dir: &OwnedFd) -> io::Result<Option<FileId>> {
    match rustix::fs::statat(dir, "info", AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(stat_id(&st))),
        Err(e) if e == rustix::io::Errno::NOENT || e == rustix::io::Errno::NOTDIR => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Creates `<dir>/info` (never through a planted link), takes its flock and writes
/// `contents`: the file whose flock is the holder's life.
pub(crate) fn create_locked_info(dir: &Path, contents: &[u8]) -> io::Result<File> {
    let fd = rustix::fs::openat(
        rustix::fs::CWD,
        dir.join("info"),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        FileMode::from_raw_mode(0o644),
    )?;
    let mut file = File::from(fd);
    // Blocking: in the mkdir fallback a prober may hold it for an instant.
    file.lock()?;
    file.write_all(contents)?;
    Ok(file)
}

/// The reader gate `<hex>.rw` (created when `create`), opened for appending readers'
/// commands and emptying the list when the file permits: another user's gate may be
/// read-only to us (then `false`: it is only read).
pub(crate) fn open_gate(path: &Path, create: bool) -> io::Result<(File, bool)> {
    let mut flags = OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    if create {
        flags |= OFlags::CREATE;
    }
    let open = |access| {
        rustix::fs::openat(
            rustix::fs::CWD,
            path,
            flags | access,
            FileMode::from_raw_mode(0o644),
        )
    };
    match open(OFlags::RDWR | OFlags::APPEND) {
        Ok(fd) => Ok((File::from(fd), true)),
        Err(e) if e == rustix::io::Errno::ACCESS => Ok((File::from(open(OFlags::RDONLY)?), false)),
        Err(e) => Err(e.into()),
    }
}

/// A lock file at `path`, for reading, not following a symlink.
pub(crate) fn open_file_nofollow(path: &Path) -> io::Result<File> {
    let fd = rustix::fs::openat(
        rustix::fs::CWD,
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        FileMode::empty(),
    )?;
    Ok(File::from(fd))
}

/// `LOCK_EX | LOCK_NB`: `Ok(true)` when taken, `Ok(false)` when someone holds it.
pub(crate) fn try_lock(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(fs::TryLockError::WouldBlock) => Ok(false),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// `LOCK_SH`, waiting for it.
pub(crate) fn lock_shared(file: &File) -> io::Result<()> {
    file.lock_shared()
}

/// Takes `file`'s flock, waiting at most until `until`. The flock is given back at once:
/// the caller only wants to know that the holder let go.
pub(crate) fn wait_flock(file: &File, exclusive: bool, until: Option<Instant>) -> io::Result<bool> {
    let take = move |f: &File| if exclusive { f.lock() } else { f.lock_shared() };
    let Some(until) = until else {
        take(file)?;
        file.unlock()?;
        return Ok(true);
    };
    match if exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    } {
        Ok(()) => {
            file.unlock()?;
            return Ok(true);
        }
        Err(fs::TryLockError::WouldBlock) => {}
        Err(fs::TryLockError::Error(e)) => return Err(e),
    }
    let remaining = until.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Ok(false);
    }
    // flock(2) has no timeout: block in a helper thread on a duplicate of the descriptor
    // and stop listening at the deadline. A helper that outlives us wakes when the holder
    // lets go, and then drops its descriptor (and the flock) at once.
    let dup = file.try_clone()?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("lockrun-wait".into())
        .spawn(move || {
            let result = take(&dup);
            if result.is_ok() {
                let _ = dup.unlock();
            }
            let _ = tx.send(result);
        })?;
    match rx.recv_timeout(remaining) {
        Ok(result) => result.map(|()| true),
        Err(_) => Ok(false),
    }
}
