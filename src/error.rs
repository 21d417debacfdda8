//! The one error type of lockrun; every variant knows its exit code.

use std::io;
use std::path::PathBuf;

use crate::exit_code::ExitCode;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Who holds a busy lock, in the words of the busy line.
#[derive(Debug, Clone)]
pub struct HolderSummary(pub String);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    #[error("{path}: {source}", path = path.display())]
    Io { path: PathBuf, source: io::Error },

    #[error(
        "cannot create lock directory {path}: {source} (choose another with --lock-dir DIR or LOCKRUN_DIR)",
        path = path.display()
    )]
    LockDir { path: PathBuf, source: io::Error },

    #[error(
        "lock directory {path} is not a directory (choose another with --lock-dir DIR or LOCKRUN_DIR)",
        path = path.display()
    )]
    LockDirNotDir { path: PathBuf },

    /// Something that is not a lock sits where a lock must go (a symlink, a file).
    #[error("{0}")]
    NotALock(String),

    #[error("{target} is locked by {holder}; gave up after {waited}", target = target.display())]
    Busy {
        target: PathBuf,
        holder: String,
        waited: String,
        exit_code: i32,
    },

    #[error("lock on {target} was broken from outside while held ({detail})", target = target.display())]
    LockLost { target: PathBuf, detail: String },

    #[error("{path}: no such file", path = path.display())]
    Missing { path: PathBuf },

    #[error("{0}")]
    Data(String),

    #[error("cannot run {program}: {source}")]
    Spawn { program: String, source: io::Error },

    #[error("{0}")]
    Internal(String),

    /// A lock id (for `release`) that names no lock directory; nothing was touched.
    #[error("refusing lock id {id}: {why}")]
    BadLockId { id: String, why: String },

    /// A lock that `unlock` or `release` will not remove without --force.
    #[error("{what} is held by {holder}; {hint}")]
    Refused {
        what: String,
        holder: String,
        hint: String,
        exit_code: i32,
    },

    /// A lock that does not exist (any more).
    #[error("{path}: {why}", path = path.display())]
    NoLock { path: PathBuf, why: String },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    pub fn data(msg: impl Into<String>) -> Self {
        Error::Data(msg.into())
    }

    /// The exit code this error maps to; the only place that decides it.
    pub fn code(&self) -> i32 {
        match self {
            Error::Usage(_) => ExitCode::Usage.code(),
            Error::Io { source, .. } => io_code(source),
            Error::LockDir { .. } | Error::LockDirNotDir { .. } | Error::NotALock(_) => {
                ExitCode::CantCreate.code()
            }
            Error::Busy { exit_code, .. } => *exit_code,
            Error::LockLost { .. } => ExitCode::Software.code(),
            Error::Missing { .. } => ExitCode::NoInput.code(),
            Error::Data(_) => ExitCode::DataErr.code(),
            Error::Spawn { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => ExitCode::NotFound.code(),
                _ => ExitCode::NotExecutable.code(),
            },
            Error::Internal(_) => ExitCode::Software.code(),
            Error::BadLockId { .. } => ExitCode::Usage.code(),
            Error::Refused { exit_code, .. } => *exit_code,
            Error::NoLock { .. } => ExitCode::NoInput.code(),
        }
    }
}

fn io_code(err: &io::Error) -> i32 {
    match err.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            ExitCode::NoPerm.code()
        }
        io::ErrorKind::NotFound => ExitCode::NoInput.code(),
        _ => ExitCode::IoErr.code(),
    }
}
