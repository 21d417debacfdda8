//! Atomic replacement of a file on Windows.
//!
//! `ReplaceFileW` puts the new content in place under the old file's identity: its
//! attributes (hidden, read-only...), ACL and creation time stay. A target that does not
//! exist yet gets `MoveFileExW(MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)`.
//!
//! Virus scanners and search indexers open files without sharing for a moment; a
//! replace then fails with a sharing violation (or "access denied" for a file being
//! deleted). Those are retried, with a growing pause, for as long as the command may wait
//! for its lock (`-w`), then reported.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_LOCK_VIOLATION, ERROR_SHARING_VIOLATION,
    ERROR_UNABLE_TO_MOVE_REPLACEMENT, ERROR_UNABLE_TO_MOVE_REPLACEMENT_2,
    ERROR_UNABLE_TO_REMOVE_REPLACED, GetLastError,
};
use windows_sys::Win32::Storage::FileSystem::{
    MOVEFILE_REPLACE_EXISTING, MOVEFILE_WRITE_THROUGH, MoveFileExW,
    REPLACEFILE_IGNORE_MERGE_ERRORS, ReplaceFileW,
};

use super::wide;

/// Milliseconds a read or a replace retries a file that a virus scanner or an indexer
/// has open without sharing: the lock's wait (`-w`), set by the command line; `u64::MAX`
/// waits as long as it takes (`-w` without limit).
static SHARING_PATIENCE_MS: AtomicU64 =
    AtomicU64::new(crate::lock::DEFAULT_TIMEOUT.as_millis() as u64);

/// Makes sharing violations wait as long as the lock may (`None`: without limit).
pub(crate) fn set_sharing_patience(patience: Option<Duration>) {
    let ms = patience.map_or(u64::MAX, |p| {
        u64::try_from(p.as_millis()).unwrap_or(u64::MAX)
    });
    SHARING_PATIENCE_MS.store(ms, Ordering::Relaxed);
}

/// How long a read or a replace retries a sharing violation (see `set_sharing_patience`).
pub(crate) fn sharing_patience() -> Option<Duration> {
    match SHARING_PATIENCE_MS.load(Ordering::Relaxed) {
        u64::MAX => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

/// Whether another try fits before `deadline` (`None`: no deadline).
fn may_retry(deadline: Option<Instant>, pause: Duration) -> bool {
    deadline.is_none_or(|d| Instant::now() + pause < d)
}

/// Opens `path` with `options`, retrying sharing violations for up to `patience`
/// (`None`: without limit).
pub(crate) fn open_retrying(
    path: &Path,
    options: &std::fs::OpenOptions,
    patience: Option<Duration>,
) -> io::Result<std::fs::File> {
    let deadline = patience.map(|p| Instant::now() + p);
    let mut pause = Duration::from_millis(5);
    loop {
        match options.open(path) {
            Err(e)
                if e.raw_os_error().is_some_and(|c| {
                    c == ERROR_SHARING_VIOLATION as i32 || c == ERROR_LOCK_VIOLATION as i32
                }) && may_retry(deadline, pause) =>
            {
                crate::trace::step(|| {
                    format!("open of {}: {e} (file in use); retrying", path.display())
                });
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Errors worth another try: someone has one of the files open for a moment.
fn transient(code: u32) -> bool {
    matches!(
        code,
        ERROR_SHARING_VIOLATION
            | ERROR_LOCK_VIOLATION
            | ERROR_ACCESS_DENIED
            | ERROR_UNABLE_TO_REMOVE_REPLACED
            | ERROR_UNABLE_TO_MOVE_REPLACEMENT
            | ERROR_UNABLE_TO_MOVE_REPLACEMENT_2
    )
}

/// Whether `real` can be opened for deletion right now; Err(code) when it cannot.
fn may_replace(real: &Path) -> Result<(), u32> {
    use std::os::windows::fs::OpenOptionsExt;
    const DELETE: u32 = 0x0001_0000;
    const SHARE_ALL: u32 = 0x7; // FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE
    match std::fs::OpenOptions::new()
        .access_mode(DELETE)
        .share_mode(SHARE_ALL)
        .open(real)
    {
        Ok(_) => Ok(()),
        // Gone or unreadable for another reason: the replace itself will say.
        Err(e) => match e.raw_os_error() {
            Some(c) if transient(c as u32) => Err(c as u32),
            _ => Ok(()),
        },
    }
}

/// One attempt: Err(code) with the Windows error code.
fn replace_once(tmp: &[u16], real: &[u16], real_exists: bool) -> Result<(), u32> {
    let ok = if real_exists {
        // SAFETY: both are NUL-terminated UTF-16 strings living across the call; no
        // backup file, and the two reserved pointers are null as required.
        unsafe {
            ReplaceFileW(
                real.as_ptr(),
                tmp.as_ptr(),
                std::ptr::null(),
                REPLACEFILE_IGNORE_MERGE_ERRORS,
                std::ptr::null(),
                std::ptr::null(),
            )
        }
    } else {
        // SAFETY: both are NUL-terminated UTF-16 strings living across the call.
        unsafe {
            MoveFileExW(
                tmp.as_ptr(),
                real.as_ptr(),
                MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH,
            )
        }
    };
    if ok != 0 {
        Ok(())
    } else {
        // SAFETY: reads this thread's last-error value; no pointers.
        Err(unsafe { GetLastError() })
    }
}

/// Replaces `real` with the complete, flushed file `tmp` (same directory), retrying
/// sharing violations for up to `patience` (`None`: without limit). On error `tmp` may
/// still exist: the caller removes it.
pub(crate) fn replace_file(tmp: &Path, real: &Path, patience: Option<Duration>) -> io::Result<()> {
    let deadline = patience.map(|p| Instant::now() + p);
    let (tmp_w, real_w) = (wide(tmp), wide(real));
    let mut pause = Duration::from_millis(5);
    loop {
        let exists = real.exists();
        // Look first whether the old file may be replaced now (DELETE access next to
        // every other opener): a ReplaceFileW that fails can leave a stray backup file
        // behind (Wine does), so it is only tried when it can succeed.
        let attempt = match exists.then(|| may_replace(real)) {
            Some(Err(code)) => Err(code),
            _ => replace_once(&tmp_w, &real_w, exists),
        };
        match attempt {
            Ok(()) => return Ok(()),
            // The target went away between the look and the replace: move instead.
            Err(ERROR_FILE_NOT_FOUND) if exists => continue,
            Err(code) if transient(code) && may_retry(deadline, pause) => {
                crate::trace::step(|| {
                    format!(
                        "replace of {}: Windows error {code} (file in use); retrying",
                        real.display()
                    )
                });
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(code) => return Err(io::Error::from_raw_os_error(code as i32)),
        }
    }
}
