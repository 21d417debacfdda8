//! The Windows side of `lock/flock.rs`: every open and lock of a lock's files, with the
//! same functions and meanings.
//!
//! - Files are opened with full sharing (read, write, delete), so that a holder's open
//!   `info` can still be read by probers and renamed away by a breaker or releaser.
//! - A link or junction in the place of a lock directory or its `info` is refused
//!   (`FILE_FLAG_OPEN_REPARSE_POINT`, then a look at what was opened), as `O_NOFOLLOW`
//!   does on Unix; such errors have the kind `NotADirectory`.
//! - Locks are `LockFileEx` on one byte far past the text (`sys::lock_file`).
//! - No directory handle is kept open: an open handle in a directory stops its rename
//!   and delays its removal on Windows. A lock directory is known by path and identity.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, Write};
use std::os::windows::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use windows_sys::Win32::Foundation::{ERROR_ACCESS_DENIED, ERROR_DELETE_PENDING};
use windows_sys::Win32::Storage::FileSystem::{
    FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT,
};

use super::{file_identity, lock_file, unlock_file};

/// (volume serial, file index): what tells one file from another that took its name.
pub(crate) type FileId = (u64, u64);

/// A lock directory as it was when opened: its path, identity and metadata.
#[derive(Debug)]
pub(crate) struct LockDirRef {
    path: PathBuf,
    id: FileId,
    meta: fs::Metadata,
}

fn not_a_lock(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotADirectory,
        format!("{} is {what}", path.display()),
    )
}

/// True for the errors that say "a link, a junction or a file is in the place of a lock
/// directory or its `info`".
pub(crate) fn is_not_a_lock(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotADirectory
}

/// Opens `path` itself, never what a link or junction there points to.
fn open_nofollow(path: &Path, write: bool) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true)
        .write(write)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS);
    let file = match opts.open(path) {
        Ok(f) => f,
        // A directory or file being deleted is as good as gone.
        Err(e)
            if e.raw_os_error() == Some(ERROR_DELETE_PENDING as i32)
                || (e.raw_os_error() == Some(ERROR_ACCESS_DENIED as i32) && !path.exists()) =>
        {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        Err(e) => return Err(e),
    };
    Ok(file)
}

/// The directory at `path`, not following a link or junction in its place.
pub(crate) fn open_dir_nofollow(path: &Path) -> io::Result<LockDirRef> {
    let dir = open_nofollow(path, false)?;
    let meta = dir.metadata()?;
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(not_a_lock(
            path,
            "not a lock directory (a link or a file is in its place)",
        ));
    }
    let (id, _) = file_identity(&dir)?;
    Ok(LockDirRef {
        path: path.to_path_buf(),
        id,
        meta,
    })
}

pub(crate) fn dir_id(dir: &LockDirRef) -> io::Result<FileId> {
    Ok(dir.id)
}

pub(crate) fn dir_metadata(dir: &LockDirRef) -> io::Result<fs::Metadata> {
    Ok(dir.meta.clone())
}

/// A `DirBuilder` for lock directories (they inherit the parent's ACL).
pub(crate) fn dir_builder() -> fs::DirBuilder {
    fs::DirBuilder::new()
}

/// The identity of an open file.
pub(crate) fn id_of(file: &File) -> io::Result<FileId> {
    Ok(file_identity(file)?.0)
}

/// A file opened by path, refusing a link in its place.
fn open_file_checked(path: &Path, write: bool) -> io::Result<File> {
    let file = open_nofollow(path, write)?;
    let meta = file.metadata()?;
    if meta.file_type().is_symlink() || meta.is_dir() {
        return Err(not_a_lock(
            path,
            "not a lock file (a link or a directory is in its place)",
        ));
    }
    Ok(file)
}

/// The `info` file of the lock directory `dir`, for reading.
pub(crate) fn open_info_in(dir: &LockDirRef) -> io::Result<File> {
    open_file_checked(&dir.path.join("info"), false)
}

/// The identity of the `info` entry in `dir`, `None` when there is none.
pub(crate) fn info_id_in(dir: &LockDirRef) -> io::Result<Option<FileId>> {
    match open_nofollow(&dir.path.join("info"), false) {
        Ok(f) => Ok(Some(id_of(&f)?)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates `<dir>/info`, takes its lock and writes `contents`.
pub(crate) fn create_locked_info(dir: &Path, contents: &[u8]) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.join("info"))?;
    lock_file(&file, true, true)?;
    file.write_all(contents)?;
    Ok(file)
}

/// Opens the `info` of a lock directory just published and takes its lock (see
/// `sys/windows`: a directory is renamed into place with its `info` closed).
pub(crate) fn lock_published_info(dir: &Path) -> io::Result<File> {
    let mut file = open_file_checked(&dir.join("info"), true)?;
    lock_file(&file, true, true)?;
    // Opened afresh, the file is at its start: what is written next (the CHILD lines)
    // goes after the holder's lines, never over them.
    file.seek(io::SeekFrom::End(0))?;
    Ok(file)
}

/// The reader gate `<hex>.rw` (created when `create`), opened for appending when the
/// file permits (then `true`).
pub(crate) fn open_gate(path: &Path, create: bool) -> io::Result<(File, bool)> {
    let open = |write: bool| {
        let mut opts = OpenOptions::new();
        opts.read(true).custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
        if write {
            opts.append(true).create(create);
        }
        opts.open(path)
    };
    match open(true) {
        Ok(f) => Ok((f, true)),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok((open(false)?, false)),
        Err(e) => Err(e),
    }
}

/// Records this process in the reader gate `gate` (opened for appending) as one of its
/// shared holders: Windows cannot list who holds a byte-range lock (Linux has
/// `/proc/locks`), so `show` names the readers from these lines, keeping those whose
/// process still runs. The gate is emptied when it is found free of readers.
pub(crate) fn note_reader(mut gate: &File, pid: u32) -> io::Result<()> {
    let mut line = format!("READER: {pid}\n");
    if let Some(start) = super::process_start_token(pid) {
        line.push_str(&format!("READER_START: {start}\n"));
    }
    gate.write_all(line.as_bytes())
}

/// The PIDs of the shared holders recorded in the reader gate `gate` (`note_reader`)
/// whose process still runs, sorted.
pub(crate) fn live_readers(gate: &File) -> io::Result<Vec<u32>> {
    let mut text = String::new();
    io::Read::read_to_string(&mut io::Read::take(gate, 1 << 20), &mut text)?;
    let mut recorded: Vec<(u32, Option<&str>)> = Vec::new();
    for line in text.lines() {
        match line.split_once(": ") {
            Some(("READER", pid)) => {
                if let Ok(pid) = pid.parse() {
                    recorded.push((pid, None));
                }
            }
            Some(("READER_START", start)) => {
                if let Some(last) = recorded.last_mut().filter(|l| l.1.is_none()) {
                    last.1 = Some(start);
                }
            }
            _ => {}
        }
    }
    let mut pids: Vec<u32> = recorded
        .into_iter()
        .filter(|(pid, start)| match start {
            Some(start) => super::process_is_running(*pid, start),
            None => super::pid_state(*pid) == super::PidState::Alive,
        })
        .map(|(pid, _)| pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// A lock file at `path`, for reading, not following a link.
pub(crate) fn open_file_nofollow(path: &Path) -> io::Result<File> {
    open_file_checked(path, false)
}

/// Exclusive, not waiting: `Ok(true)` when taken, `Ok(false)` when someone holds it.
pub(crate) fn try_lock(file: &File) -> io::Result<bool> {
    lock_file(file, true, false)
}

/// Gives back the exclusive lock of a handle that took the shared one on top of it:
/// Windows stacks the two on one handle (flock converts), and the first unlock of a range
/// locked both ways releases the exclusive lock, so no instant passes unlocked.
pub(crate) fn drop_exclusive(file: &File) -> io::Result<()> {
    unlock_file(file)
}

/// Shared, waiting for it.
pub(crate) fn lock_shared(file: &File) -> io::Result<()> {
    // Taken while holding the lock directory, so no writer holds the gate: it never
    // has to wait. A blocking call could only hang (a file system that would not stack
    // the first reader's shared lock on its own exclusive one); refused, it is one line.
    if lock_file(file, false, false)? {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "the reader gate's shared lock is refused although no writer can hold it",
        ))
    }
}

/// Takes `file`'s lock, waiting at most until `until`; gives it back at once (the caller
/// only wants to know that the holder let go). A blocking `LockFileEx` wakes the moment
/// the holder lets go (or dies): no polling.
pub(crate) fn wait_flock(file: &File, exclusive: bool, until: Option<Instant>) -> io::Result<bool> {
    if lock_file(file, exclusive, false)? {
        unlock_file(file)?;
        return Ok(true);
    }
    let Some(until) = until else {
        lock_file(file, exclusive, true)?;
        unlock_file(file)?;
        return Ok(true);
    };
    let remaining = until.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Ok(false);
    }
    // LockFileEx on a synchronous handle has no timeout: block in a helper thread on a
    // duplicate handle and stop listening at the deadline. A helper that outlives the
    // wait takes the lock when the holder lets go and gives it back at once.
    let dup = file.try_clone()?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("lockrun-wait".into())
        .spawn(move || {
            let result = lock_file(&dup, exclusive, true);
            if let Ok(true) = result {
                let _ = unlock_file(&dup);
            }
            let _ = tx.send(result);
        })?;
    match rx.recv_timeout(remaining) {
        Ok(result) => result,
        Err(_) => Ok(false),
    }
}
