//! Lock ids (`<lockdir>/<64 hex>.lock`, printed by `acquire`): checking one given on
//! the command line before anything is touched.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::entry::is_hex64;

/// A checked lock id: `<lockdir>/<64 lowercase hex>.lock`, not a symlink, in a real
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockId {
    pub(crate) lock_dir: PathBuf,
    pub(crate) lock_path: PathBuf,
    pub(crate) hex: String,
}

/// Checks a lock id given on the command line; the error says what is wrong with it.
/// Nothing is created or removed. A lock that does not exist (any more) is an
/// `io::ErrorKind::NotFound` error; every other refusal is `InvalidInput`.
pub(crate) fn parse_lock_id(id: &OsStr) -> io::Result<LockId> {
    let refuse = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_string());
    let bytes = id.as_encoded_bytes();
    if bytes.is_empty() {
        return Err(refuse("it is empty"));
    }
    if bytes.iter().any(|b| b.is_ascii_control()) {
        return Err(refuse(
            "it contains a line break or another control character",
        ));
    }
    let path = Path::new(id);
    let Some(Component::Normal(name)) = path.components().next_back() else {
        return Err(refuse("it does not end in a <64 hex>.lock name"));
    };
    let hex = match name.to_str().and_then(|n| n.strip_suffix(".lock")) {
        Some(hex) if is_hex64(hex) => hex.to_string(),
        _ => return Err(refuse("its name is not <64 lowercase hex>.lock")),
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let lock_dir = fs::canonicalize(&parent).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("its lock directory {}: {e}", parent.display()),
        )
    })?;
    if !lock_dir.is_dir() {
        return Err(refuse("its parent is not a directory"));
    }
    let lock_path = lock_dir.join(format!("{hex}.lock"));
    match fs::symlink_metadata(&lock_path) {
        Ok(m) if m.file_type().is_symlink() => Err(refuse("it is a symlink, not a lock directory")),
        Ok(m) if !m.is_dir() => Err(refuse("it is not a directory")),
        Ok(_) => Ok(LockId {
            lock_dir,
            lock_path,
            hex,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no such lock (released already, or broken as stale)",
        )),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_hostile_ids() {
        for id in ["", "/", "..", ".", "a\nb", "x.lock", "/tmp/../"] {
            let err = parse_lock_id(OsStr::new(id)).expect_err(id);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{id:?}: {err}");
        }
    }
}
