//! Which lock a path names: its canonical key, the key's SHA-256 name, and the directory
//! the lock lives in.

#[cfg(not(windows))]
use std::ffi::OsString;
use std::fs;
use std::io;
#[cfg(not(windows))]
use std::path::Component;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The identity of a target file: every spelling of one file maps to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockKey {
    /// Canonical absolute path of the target (it need not exist).
    pub(crate) target: PathBuf,
    /// Lowercase hex SHA-256 of the target's bytes: the lock's file name stem.
    pub(crate) hex: String,
    /// A `--name` lock: `target` is the name as given, not a path.
    pub(crate) named: bool,
}

impl LockKey {
    pub(crate) fn for_path(path: &Path) -> Result<Self> {
        let target = canonical_target(path)?;
        let hex = hex_of_target(&target);
        Ok(LockKey {
            target,
            hex,
            named: false,
        })
    }

    /// The lock of a name (`--name`) rather than a file. Its SHA-256 is that of the name's
    /// bytes, so a name that spells a canonical path is the same lock as that file's,
    /// in the same lock directory.
    pub(crate) fn for_name(name: &str) -> Result<Self> {
        if let Some(why) = name_problem(name) {
            return Err(Error::usage(format!("--name {name:?}: a lock name {why}")));
        }
        Ok(LockKey {
            target: PathBuf::from(name),
            hex: hex_digest(name.as_bytes()),
            named: true,
        })
    }

    /// `<lockdir>/<hex>.lock`
    pub(crate) fn lock_path(&self, lock_dir: &Path) -> PathBuf {
        lock_dir.join(format!("{}.lock", self.hex))
    }

    /// `<lockdir>/<hex>.rw`, the reader/writer gate of shared locks.
    pub(crate) fn rw_path(&self, lock_dir: &Path) -> PathBuf {
        lock_dir.join(format!("{}.rw", self.hex))
    }

    /// The directory a lock on this target lives in when none is chosen: `.locks` beside
    /// the target; for a name, the user's state directory
    /// (`$XDG_STATE_HOME/lockrun`, else `~/.local/state/lockrun`), the same whatever the
    /// current directory.
    pub(crate) fn default_lock_dir(&self) -> PathBuf {
        if self.named {
            return named_lock_dir().unwrap_or_else(|| PathBuf::from(".locks"));
        }
        self.target
            .parent()
            .unwrap_or(Path::new("/"))
            .join(".locks")
    }
}

/// Why a name cannot be a lock name; `None` when it can.
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.contains('\0') || name.contains('\n') || name.contains('\r') {
        Some("contains a NUL or a line break")
    } else if name.contains("//") {
        Some("contains '//'")
    } else if name.ends_with('/') {
        Some("ends with '/'")
    } else if name.len() > 4096 {
        Some("is longer than 4096 bytes")
    } else {
        None
    }
}

/// Where `--name` locks live by default; `None` without a home directory.
pub(crate) fn named_lock_dir() -> Option<PathBuf> {
    // On Windows one place for every shell: Git Bash sets HOME and PowerShell and cmd
    // do not, and a name must be one lock whichever shell takes it. %LOCALAPPDATA% is
    // Windows' per-user state, and Git Bash passes it on.
    #[cfg(windows)]
    if let Some(dir) = crate::sys::local_app_data() {
        return Some(dir.join("lockrun"));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".local/state"))
        });
    Some(state?.join("lockrun"))
}

/// The lock name of a canonical target: the SHA-256 of its bytes (on Windows, of its
/// case-folded UTF-8 text, since names compare without case there).
pub(crate) fn hex_of_target(target: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        hex_digest(target.as_os_str().as_bytes())
    }
    #[cfg(windows)]
    {
        hex_digest(crate::sys::path::key_text(&target.to_string_lossy()).as_bytes())
    }
}

pub(crate) fn hex_digest(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// `path` made absolute against the current directory; nothing resolved.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .map_err(|e| Error::io(".", e))?
        .join(path))
}

/// The canonical absolute path of `path`: symlinks resolved (its own too), `.` and `..`
/// removed. A path that does not exist is the canonical form of its longest existing
/// ancestor plus the remaining components.
pub(crate) fn canonical_target(path: &Path) -> Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(Error::usage("the target path is empty"));
    }
    #[cfg(windows)]
    {
        crate::sys::path::canonical_target(path).map_err(|e| Error::io(path, e))
    }
    #[cfg(not(windows))]
    {
        resolve(&absolute(path)?)
    }
}

#[cfg(not(windows))]
const MAX_LINKS: usize = 40;

/// Walks `absolute` component by component, like the kernel does, so a `..` after a
/// symlinked directory climbs out of the link's target, not out of the link.
#[cfg(not(windows))]
fn resolve(absolute: &Path) -> Result<PathBuf> {
    let mut links = 0;
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, absolute);
    let mut out = PathBuf::from("/");
    let mut out_exists = true;
    while let Some(part) = pending.pop() {
        if part == ".." {
            out.pop();
            continue;
        }
        let candidate = out.join(&part);
        if !out_exists {
            out = candidate;
            continue;
        }
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Error::io(
                        absolute,
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "too many levels of symbolic links",
                        ),
                    ));
                }
                let link = fs::read_link(&candidate).map_err(|e| Error::io(&candidate, e))?;
                if link.is_absolute() {
                    out = PathBuf::from("/");
                }
                push_components(&mut pending, &link);
            }
            Ok(_) => out = candidate,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                out_exists = false;
                out = candidate;
            }
            Err(e) => return Err(Error::io(&candidate, e)),
        }
    }
    Ok(out)
}

/// Pushes the normal and `..` components of `path` onto a stack, first on top.
#[cfg(not(windows))]
fn push_components(stack: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    stack.extend(parts.into_iter().rev());
}

/// Where locks go: `--lock-dir`, else `$LOCKRUN_DIR` (both resolved by the caller into
/// `chosen`), else `.locks` beside the target. Created on demand.
pub(crate) fn ensure_lock_dir(key: &LockKey, chosen: Option<&Path>) -> Result<PathBuf> {
    let dir = match chosen {
        Some(dir) if dir.is_absolute() => dir.to_path_buf(),
        Some(dir) => std::env::current_dir()
            .map_err(|e| Error::io(".", e))?
            .join(dir),
        None if key.named && named_lock_dir().is_none() => {
            return Err(Error::usage(format!(
                "--name {}: no lock directory (no HOME or XDG_STATE_HOME{}): choose one with --lock-dir DIR or LOCKRUN_DIR",
                key.target.display(),
                if cfg!(windows) {
                    " or LOCALAPPDATA"
                } else {
                    ""
                }
            )));
        }
        None => key.default_lock_dir(),
    };
    match fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => return Ok(dir),
        Ok(_) => return Err(Error::LockDirNotDir { path: dir }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::LockDir {
                path: dir,
                source: e,
            });
        }
    }
    // A chosen directory is created with its parents; the default `.locks` only when the
    // target's directory exists (lockrun never creates the target's directory).
    match super::flock::dir_builder()
        .recursive(chosen.is_some() || key.named)
        .create(&dir)
    {
        Ok(()) => Ok(dir),
        // Another process created it in the meantime.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(dir),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            Err(Error::LockDirNotDir { path: dir })
        }
        Err(e) => Err(Error::LockDir {
            path: dir,
            source: e,
        }),
    }
}
