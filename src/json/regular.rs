//! The JSON commands read and replace only regular files, or a symlink to one.
//!
//! Replacing a device node, a FIFO or a socket with a regular file destroys it (as
//! root, `lockrun write /dev/null` would), and opening a FIFO blocks until a writer
//! comes, with the lock held. So the target is checked with `stat` (which opens
//! nothing) before the lock is taken, and opened with `O_NONBLOCK` and checked again
//! with `fstat`, which also catches a FIFO swapped in between.

use std::fs::{self, File, OpenOptions};
use std::io;
#[cfg(unix)]
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// What a file is, in the words of the refusal: "a FIFO", "a directory", ...
pub fn kind(ft: &fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if let Some(special) = special_kind(ft) {
        special
    } else if ft.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

/// Unix's special files: FIFOs, sockets and devices.
#[cfg(unix)]
fn special_kind(ft: &fs::FileType) -> Option<&'static str> {
    if ft.is_fifo() {
        Some("a FIFO")
    } else if ft.is_socket() {
        Some("a socket")
    } else if ft.is_char_device() {
        Some("a character device")
    } else if ft.is_block_device() {
        Some("a block device")
    } else {
        None
    }
}

/// Windows: std's `fs::FileType` has no FIFO, socket or device kinds.
#[cfg(windows)]
fn special_kind(_: &fs::FileType) -> Option<&'static str> {
    None
}

/// The refusal of `path`, which is `what` (see [`kind`]): exit 74.
pub fn refusal(path: &Path, what: &str) -> Error {
    let why = if what == "not a regular file" {
        "it is not a regular file; lockrun reads and replaces only regular files".to_string()
    } else {
        format!("it is {what}, not a regular file; lockrun reads and replaces only regular files")
    };
    let kind = if what == "a directory" {
        io::ErrorKind::IsADirectory
    } else {
        io::ErrorKind::InvalidInput
    };
    Error::io(path, io::Error::new(kind, why))
}

/// Refuses `path` unless it is missing or (through any symlinks) a regular file.
/// Opens nothing.
pub fn check(path: &Path) -> Result<()> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) => Err(refusal(path, kind(&m.file_type()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        // Let the open report what is wrong (a loop of links, a file used as a
        // directory, permission): the same words as everywhere else.
        Err(_) => Ok(()),
    }
}

/// Opens `path` with `options`, never blocking on a FIFO, and refuses what is not a
/// regular file. `NotFound` is passed through for the caller to decide.
pub fn open(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    #[cfg(unix)]
    let file = options.custom_flags(libc::O_NONBLOCK).open(path)?;
    // Windows has no FIFO to block on; a virus scanner or an indexer may have the file
    // open without sharing for a moment, which is retried.
    #[cfg(windows)]
    let file =
        crate::sys::replace::open_retrying(path, options, crate::sys::replace::sharing_patience())?;
    let ft = file.metadata()?.file_type();
    if !ft.is_file() {
        return Err(io::Error::other(NotRegular(kind(&ft))));
    }
    Ok(file)
}

/// [`open`] for reading.
pub fn open_read(path: &Path) -> io::Result<File> {
    open(path, OpenOptions::new().read(true))
}

/// The error [`open`] gives for a file that is not regular.
#[derive(Debug)]
struct NotRegular(&'static str);

impl std::fmt::Display for NotRegular {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for NotRegular {}

/// An error of [`open`] on `path`, in lockrun's words.
pub fn open_error(path: &Path, e: io::Error) -> Error {
    match e.get_ref().and_then(|i| i.downcast_ref::<NotRegular>()) {
        Some(NotRegular(what)) => refusal(path, what),
        None => Error::io(path, e),
    }
}
