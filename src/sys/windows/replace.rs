//! Atomic replacement of a file on Windows.
//!
//! `ReplaceFileW` puts the new content in place under the old file's identity: its
//! attributes (hidden, read-only...), ACL and creation time stay. A target that does not
//! exist yet gets `MoveFileExW(MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)`.
//!
//! Virus scanners and search indexers open files without sharing for a moment; a
//! replace then fails with a sharing violation (or "access denied" for a file being
//! deleted). Sharing violations are retried, with a growing pause, for as long as the
//! command may wait for its lock (`-w`), then reported; "access denied" for at most 2 s
//! (a read-only target is no reason: its attribute is lifted for the replace).

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_LOCK_VIOLATION, ERROR_PATH_NOT_FOUND,
    ERROR_SHARING_VIOLATION, ERROR_UNABLE_TO_MOVE_REPLACEMENT, ERROR_UNABLE_TO_MOVE_REPLACEMENT_2,
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

/// Access denied that lasts longer than this is no scanner's moment: the file's ACL (or
/// a delete that never ends) refuses us, and waiting out `-w` would only hold the lock.
const DENIED_PATIENCE: Duration = Duration::from_secs(2);

/// The least time the last step of a replace that left the target missing is retried,
/// even when `-w` is shorter: until it succeeds the new content has no name but the
/// temp file's.
const MOVE_IN_PATIENCE: Duration = Duration::from_secs(2);

/// A replace that left `real` missing: the new content is only in the temp file, which
/// the caller must keep (the message says where it is).
#[derive(Debug)]
pub(crate) struct TargetLost(String);

impl std::fmt::Display for TargetLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TargetLost {}

/// Whether `e` is a [`TargetLost`]: the temp file then holds the only copy.
pub(crate) fn target_lost(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<TargetLost>())
}

/// Whether `path` is certainly gone (not merely unreadable, or pending deletion).
fn gone(path: &Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == io::ErrorKind::NotFound)
}

/// Sets or clears the read-only attribute of `path`, retrying sharing violations
/// within `deadline`.
fn set_readonly(path: &Path, readonly: bool, deadline: Option<Instant>) -> io::Result<()> {
    let mut pause = Duration::from_millis(5);
    loop {
        let result = std::fs::metadata(path).and_then(|m| {
            let mut perms = m.permissions();
            perms.set_readonly(readonly);
            std::fs::set_permissions(path, perms)
        });
        match result {
            Err(e)
                if e.raw_os_error().is_some_and(|c| {
                    c == ERROR_SHARING_VIOLATION as i32 || c == ERROR_LOCK_VIOLATION as i32
                }) && may_retry(deadline, pause) =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Replaces `real` with the complete, flushed file `tmp` (same directory), retrying
/// sharing violations for up to `patience` (`None`: without limit) and access denied
/// for at most [`DENIED_PATIENCE`]. A read-only `real` is replaced like a mode-0444 file
/// on Unix: the new file is read-only too. On error `tmp` may still exist: the caller
/// removes it, unless the error is [`TargetLost`].
pub(crate) fn replace_file(tmp: &Path, real: &Path, patience: Option<Duration>) -> io::Result<()> {
    let start = Instant::now();
    let deadline = patience.map(|p| start + p);
    // Windows refuses to replace (delete) a read-only file, where Unix renames over a
    // mode-0444 file in a writable directory and keeps its mode: the attribute is
    // cleared for the replace and set on the new file.
    let readonly = std::fs::metadata(real).is_ok_and(|m| m.permissions().readonly());
    let result = replace_loop(tmp, real, readonly, start, deadline);
    if readonly
        && result.is_ok()
        && let Err(e) = set_readonly(real, true, deadline)
    {
        crate::trace::step(|| {
            format!(
                "replace of {}: read-only attribute not set again: {e}",
                real.display()
            )
        });
    }
    result
}

fn replace_loop(
    tmp: &Path,
    real: &Path,
    readonly: bool,
    start: Instant,
    deadline: Option<Instant>,
) -> io::Result<()> {
    let denied_deadline =
        Some(deadline.map_or(start + DENIED_PATIENCE, |d| d.min(start + DENIED_PATIENCE)));
    let (tmp_w, real_w) = (wide(tmp), wide(real));
    let mut pause = Duration::from_millis(5);
    let mut vanished_once = false;
    loop {
        let exists = real.exists();
        // Look first whether the old file may be replaced now (DELETE access next to
        // every other opener): a ReplaceFileW that fails can leave a stray backup file
        // behind (Wine does), so it is only tried when it can succeed.
        // The read-only attribute is off only around each attempt, so that a kill while
        // retrying leaves the old file as it was.
        let cleared = readonly && exists;
        if cleared {
            set_readonly(real, false, deadline).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("the file is read-only and that cannot be cleared ({e})"),
                )
            })?;
        }
        let attempt = match exists.then(|| may_replace(real)) {
            Some(Err(code)) => Err(code),
            _ => replace_once(&tmp_w, &real_w, exists),
        };
        if cleared && attempt.is_err() && !gone(real) {
            let _ = set_readonly(real, true, deadline);
        }
        let code = match attempt {
            Ok(()) => return Ok(()),
            Err(code) => code,
        };
        // Another program (a cleaner) removed the temp file: no retry can bring it back.
        if gone(tmp) {
            return Err(io::Error::other(format!(
                "the temp file with the new content ({}) was removed by another program \
                 before it could replace the file; {}",
                tmp.display(),
                if gone(real) {
                    "the file is missing"
                } else {
                    "the file is unchanged"
                }
            )));
        }
        let retry = match code {
            // The old name is free now, and the new content still has its temp name
            // (Microsoft's documentation of ReplaceFileW, Wine alike).
            ERROR_UNABLE_TO_MOVE_REPLACEMENT | ERROR_UNABLE_TO_MOVE_REPLACEMENT_2 if exists => {
                return move_in(tmp, real, &tmp_w, &real_w, deadline, code);
            }
            // The target went away between the look and the replace: move instead, at
            // once the first time.
            ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND if exists => {
                let first = !vanished_once;
                vanished_once = true;
                first || may_retry(deadline, pause)
            }
            ERROR_ACCESS_DENIED => may_retry(denied_deadline, pause),
            code => transient(code) && may_retry(deadline, pause),
        };
        if !retry {
            return Err(io::Error::from_raw_os_error(code as i32));
        }
        crate::trace::step(|| {
            format!(
                "replace of {}: Windows error {code} (file in use); retrying",
                real.display()
            )
        });
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Finishes a ReplaceFileW that removed `real` but could not give the new content its
/// name (`code`): moves `tmp` there, retrying for the lock's wait (at least
/// [`MOVE_IN_PATIENCE`]). On failure the error is [`TargetLost`], naming `tmp`.
fn move_in(
    tmp: &Path,
    real: &Path,
    tmp_w: &[u16],
    real_w: &[u16],
    deadline: Option<Instant>,
    code: u32,
) -> io::Result<()> {
    crate::trace::step(|| {
        format!(
            "replace of {}: Windows error {code} (the old file is gone, the new one not yet \
             in place); moving it in",
            real.display()
        )
    });
    let floor = Instant::now() + MOVE_IN_PATIENCE;
    let deadline = deadline.map(|d| d.max(floor));
    let mut pause = Duration::from_millis(5);
    loop {
        let last = match replace_once(tmp_w, real_w, false) {
            Ok(()) => return Ok(()),
            Err(last) => last,
        };
        if gone(tmp) || !(transient(last) && may_retry(deadline, pause)) {
            let error = io::Error::from_raw_os_error(last as i32);
            // 1176 is documented both ways (ReplaceFileW: the old file is gone; the error
            // table: it kept its name): with the old file still in place nothing is lost.
            if !gone(real) {
                return Err(error);
            }
            let msg = if gone(tmp) {
                format!(
                    "the replace removed the old file, then the new content ({}) was \
                     removed by another program: the file is lost ({error})",
                    tmp.display()
                )
            } else {
                format!(
                    "the replace removed the old file but could not move the new content \
                     in ({error}); the new content is in {}",
                    tmp.display()
                )
            };
            return Err(io::Error::other(TargetLost(msg)));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
