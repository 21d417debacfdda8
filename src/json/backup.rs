//! `--backup[=simple|numbered]`: GNU names (`FILE~`, `FILE.~N~`), written completely and
//! synced (via the same atomic replace) before the target is replaced.

// Writing backups needs the atomic replace (Unix and Windows); the kinds are part of the CLI.
#[cfg(any(unix, windows))]
use std::fs;
#[cfg(any(unix, windows))]
use std::path::{Path, PathBuf};

#[cfg(any(unix, windows))]
use crate::error::{Error, Result};
#[cfg(any(unix, windows))]
use crate::json::atomic;

/// The GNU backup "version control" methods lockrun supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupKind {
    /// `FILE~`, replaced each time.
    Simple,
    /// `FILE.~1~`, `FILE.~2~`, ... one per change.
    Numbered,
}

/// Saves `original` (the bytes of `real` before the change) as a backup of `real`, and
/// prunes numbered backups to the newest `keep`. Returns the backup's path.
#[cfg(any(unix, windows))]
pub(crate) fn save(
    real: &Path,
    original: &[u8],
    like: Option<&fs::Metadata>,
    kind: BackupKind,
    keep: Option<usize>,
) -> Result<PathBuf> {
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = real.parent().unwrap_or(Path::new("."));
    let backup_name = match kind {
        BackupKind::Simple => format!("{name}~"),
        BackupKind::Numbered => {
            let next = numbered(dir, &name)?.last().map_or(1, |(n, _)| n + 1);
            format!("{name}.~{next}~")
        }
    };
    if backup_name.len() > atomic::NAME_MAX {
        return Err(Error::io(
            real,
            std::io::Error::new(
                std::io::ErrorKind::InvalidFilename,
                format!(
                    "its backup name {backup_name} would be {} bytes, longer than a file name may be ({}); nothing written (shorten the name, or do without --backup)",
                    backup_name.len(),
                    atomic::NAME_MAX
                ),
            ),
        ));
    }
    let path = dir.join(&backup_name);
    atomic::replace(&path, &path, original, like)?;
    if let (BackupKind::Numbered, Some(keep)) = (kind, keep) {
        let all = numbered(dir, &name)?;
        let excess = all.len().saturating_sub(keep.max(1));
        for (_, old) in all.into_iter().take(excess) {
            fs::remove_file(&old).map_err(|e| Error::io(&old, e))?;
        }
    }
    Ok(path)
}

/// Existing `NAME.~N~` files in `dir`, by ascending N.
#[cfg(any(unix, windows))]
fn numbered(dir: &Path, name: &str) -> Result<Vec<(u64, PathBuf)>> {
    let prefix = format!("{name}.~");
    let mut found = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(rest) = file.strip_prefix(&prefix)
            && let Some(num) = rest.strip_suffix('~')
            && let Ok(n) = num.parse::<u64>()
        {
            found.push((n, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}
