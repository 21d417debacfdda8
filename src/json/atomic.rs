//! Atomic replacement of a file: temp file beside the real target, full write, fsync,
//! the old file's mode (and owner when permitted), rename over the real file (a
//! symlink stays a symlink), fsync of the directory. On any failure the temp file is
//! removed and the old file is untouched; the one exception, on Windows, is a replace
//! that removed the old file but could not move the new one in: the temp file, the
//! only copy left, stays and the error names it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
#[cfg(unix)]
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::sys;

/// Marker in temp file names: `.<name>.lockrun-tmp-<pid>-<n>`.
const TMP_MARK: &str = ".lockrun-tmp-";

/// The file a write really replaces: symlinks resolved the way the lock key resolves
/// them (a missing file: its resolved parent plus its name; a dangling symlink: where
/// it points, so the link stays a link and the file is created at its target).
pub(crate) fn real_target(path: &Path) -> Result<PathBuf> {
    crate::lock::key::canonical_target(path)
}

/// The longest file name (in bytes) Linux and macOS file systems accept.
pub(crate) const NAME_MAX: usize = 255;

/// Room the temp name keeps for `<pid>-<unique>` (10 + 1 + 8 + 10 digits at most).
const TMP_SUFFIX_MAX: usize = 29;

/// `.<name>.lockrun-tmp-`, the target's name cut (at a character boundary) so that the
/// whole temp name fits [`NAME_MAX`] for any name the target itself may have.
fn tmp_prefix(real: &Path) -> String {
    let mut name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let room = NAME_MAX - 1 - TMP_MARK.len() - TMP_SUFFIX_MAX;
    if name.len() > room {
        let mut end = room;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    format!(".{name}{TMP_MARK}")
}

/// Removes temp files that writers of `real` which are gone left behind (a writer killed
/// by SIGKILL between creating its temp file and renaming it). A temp file names its
/// writer's PID; one whose writer still runs is left alone, which also spares
/// `--no-lock` writers in flight. Writers call it before writing their own temp file,
/// so SIGKILLs in a row leave at most one behind.
pub(crate) fn remove_stale_temps(real: &Path) {
    let Some(dir) = real.parent() else { return };
    // A Windows replace that failed half-way leaves the new content only in its temp
    // file, with the target missing: that temp file is kept for the user.
    #[cfg(windows)]
    if !real.exists() {
        return;
    }
    let prefix = tmp_prefix(real);
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let writer = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        let gone = match writer {
            Some(pid) => pid != std::process::id() && sys::pid_state(pid) == sys::PidState::Gone,
            None => true,
        };
        if gone {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A replace that is visible to everyone but whose directory entry may not be on disk
/// yet: [`Replaced::finish`] flushes it. Splitting the two lets a writer release the
/// lock before the directory fsync. That fsync only protects against a power cut, and
/// the next writer, who already reads the new file, flushes the same directory itself
/// before it reports success; so the lock need not wait for it.
#[must_use = "finish() makes the replace durable"]
#[derive(Debug)]
pub(crate) struct Replaced {
    dir: PathBuf,
}

impl Replaced {
    /// Flushes the rename to disk.
    pub(crate) fn finish(self) -> Result<()> {
        sync_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))
    }
}

/// [`replace_deferred`] and its [`Replaced::finish`] at once.
pub(crate) fn replace(
    shown: &Path,
    real: &Path,
    data: &[u8],
    like: Option<&fs::Metadata>,
) -> Result<()> {
    replace_deferred(shown, real, data, like, &|| Ok(()))?.finish()
}

/// Replaces `real` with `data`. `shown` is the name used in errors (what the user typed).
/// `like` is the metadata whose mode and owner the new file takes (the old file's).
/// `confirm` runs between the full write and the rename: an error from it (an etcd lock
/// that was lost) leaves the old file as it was.
pub(crate) fn replace_deferred(
    shown: &Path,
    real: &Path,
    data: &[u8],
    like: Option<&fs::Metadata>,
    confirm: &dyn Fn() -> Result<()>,
) -> Result<Replaced> {
    replace_deferred_with(shown, real, like, |file| file.write_all(data), confirm)
}

/// [`replace_deferred`] with the content written by `write`, for content not held in
/// memory at once.
pub(crate) fn replace_deferred_with(
    shown: &Path,
    real: &Path,
    like: Option<&fs::Metadata>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    confirm: &dyn Fn() -> Result<()>,
) -> Result<Replaced> {
    sys::ignore_file_size_signal();
    let dir = real.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        "{}{}-{}",
        tmp_prefix(real),
        std::process::id(),
        unique()
    ));
    // Signals that would kill us are held back while the temp file exists: they take
    // effect after the rename or after the temp file is removed.
    #[cfg(unix)]
    let mask = sys::SignalMask::block(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT])
        .map_err(|e| Error::Internal(format!("cannot block signals: {e}")))?;
    let written = write_tmp(&tmp, write, like).map(drop);
    // Last moment to find the lock lost: nothing has been replaced yet.
    if written.is_ok()
        && let Err(e) = confirm()
    {
        let _ = fs::remove_file(&tmp);
        #[cfg(unix)]
        drop(mask);
        return Err(e);
    }
    let result = written.and_then(|()| rename_over(&tmp, real));
    if let Err(e) = result {
        if !only_copy(&e) {
            let _ = fs::remove_file(&tmp);
        }
        #[cfg(unix)]
        drop(mask);
        return Err(Error::io(shown, e));
    }
    #[cfg(unix)]
    drop(mask);
    Ok(Replaced {
        dir: dir.to_path_buf(),
    })
}

#[cfg(unix)]
fn rename_over(tmp: &Path, real: &Path) -> io::Result<()> {
    fs::rename(tmp, real)
}

/// Windows: `ReplaceFileW` keeps the old file's attributes and ACL; sharing violations
/// are retried within the lock's wait (`sys::replace::sharing_patience`). An error that
/// left the target missing keeps the temp file (see `only_copy`).
#[cfg(windows)]
fn rename_over(tmp: &Path, real: &Path) -> io::Result<()> {
    sys::replace::replace_file(tmp, real, sys::replace::sharing_patience())
}

/// Whether a failed replace left the new content only in the temp file (the target is
/// gone): the temp file then stays, and the error names it.
#[cfg(windows)]
fn only_copy(e: &io::Error) -> bool {
    sys::replace::target_lost(e)
}

/// A rename leaves the old file or the new one under the real name, never neither.
#[cfg(unix)]
fn only_copy(_: &io::Error) -> bool {
    false
}

#[cfg(windows)]
fn write_tmp(
    tmp: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    _like: Option<&fs::Metadata>,
) -> io::Result<File> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    write(&mut file)?;
    file.sync_all()?;
    Ok(file)
}

#[cfg(unix)]
fn write_tmp(
    tmp: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    like: Option<&fs::Metadata>,
) -> io::Result<File> {
    let mode = like.map_or(0o666, |m| m.mode() & 0o7777);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(tmp)
        .map_err(|e| unwritable_dir(tmp, e))?;
    write(&mut file)?;
    if let Some(m) = like {
        // The umask may have masked the mode at create time; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(m.mode() & 0o7777))?;
        let ours = file.metadata()?;
        if ours.uid() != m.uid() || ours.gid() != m.gid() {
            // Only root (or the owner, for the group) may; otherwise keep ours.
            let _ = std::os::unix::fs::fchown(&file, Some(m.uid()), Some(m.gid()));
            // chown clears set-id bits; put the mode back.
            let _ = file.set_permissions(fs::Permissions::from_mode(m.mode() & 0o7777));
        }
    }
    file.sync_all()?;
    Ok(file)
}

/// Flushes a directory entry change (rename, create) to disk.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    // Windows cannot flush a directory handle; MOVEFILE_WRITE_THROUGH and ReplaceFileW
    // have made the entry durable.
    #[cfg(windows)]
    {
        let _ = dir;
        Ok(())
    }
}

fn unique() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{nanos:x}{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A file cannot be created in a directory that is not writable: say so, rather than
/// blame the file (which may well be writable itself).
pub(crate) fn unwritable_dir(created: &Path, e: io::Error) -> io::Error {
    if !matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    ) {
        return e;
    }
    let dir = match created.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    io::Error::new(
        e.kind(),
        format!(
            "cannot write beside it: the directory {} is not writable ({})",
            dir.display(),
            if e.kind() == io::ErrorKind::ReadOnlyFilesystem {
                "read-only file system"
            } else {
                "permission denied"
            }
        ),
    )
}
