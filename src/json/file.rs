//! The target file as read, and its lock: what the editors (`edit.rs`) and the readers
//! (`read`, `get`) both need.

use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::path::Path;

use crate::error::{Error, Result};
use crate::json::regular;
use crate::lock::{self, LockGuard, LockOptions};

/// A file as read: its bytes, its metadata and the still-open file.
#[derive(Debug)]
pub(crate) struct Current {
    pub(crate) bytes: Vec<u8>,
    pub(crate) meta: fs::Metadata,
    /// Kept open on purpose: while it is, replacing the file does not free the old
    /// inode (on ext4 a truncate and a discard of its blocks). Dropping it after the
    /// lock is released moves that cost out of the time the lock is held.
    pub(crate) file: File,
}

/// The file's bytes and metadata; `None` when it does not exist.
pub(crate) fn read_file(path: &Path) -> Result<Option<Current>> {
    let mut file = match regular::open_read(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(regular::open_error(path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).saturating_add(1));
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(Some(Current { bytes, meta, file }))
}

/// `file` buffered, from its first byte after a byte order mark, if any (the parsers
/// read past it; the old text kept for a backup starts at [`from_start`]).
pub(crate) fn after_bom<'f>(path: &Path, file: &'f File) -> Result<io::BufReader<&'f File>> {
    use io::BufRead;
    let mut reader = from_start(path, file)?;
    let bom = reader
        .fill_buf()
        .map_err(|e| Error::io(path, e))?
        .starts_with(b"\xEF\xBB\xBF");
    if bom {
        reader.consume(3);
    }
    Ok(reader)
}

/// `file` buffered, from its first byte.
pub(crate) fn from_start<'f>(path: &Path, mut file: &'f File) -> Result<io::BufReader<&'f File>> {
    file.seek(io::SeekFrom::Start(0))
        .map_err(|e| Error::io(path, e))?;
    Ok(io::BufReader::with_capacity(1 << 16, file))
}

/// Takes FILE's lock (unless `no_lock`).
pub(crate) fn take_lock(
    file: &Path,
    opts: &LockOptions,
    no_lock: bool,
) -> Result<Option<LockGuard>> {
    // Before the lock, so a FIFO or a device costs no wait and leaves nothing behind.
    regular::check(file)?;
    if no_lock {
        return Ok(None);
    }
    lock::acquire(file, opts).map(Some)
}
