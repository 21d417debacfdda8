//! The one error type of lockrun; every variant knows its exit code.

use std::io;
use std::path::PathBuf;

use crate::exit_code::ExitCode;

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

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
        /// `-E CODE` of the command that took the lock, set by the command layer.
        conflict_code: Option<u8>,
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
        refusal: Refusal,
    },

    /// The etcd backend could not be used: unreachable, or it refused a request.
    #[error("{0}")]
    Etcd(String),

    /// etcd refused the user, password or permissions.
    #[error("{0}")]
    EtcdAuth(String),

    /// An etcd lock whose lease ended while it was held (the line says how).
    #[error("{0}")]
    LeaseLost(String),

    /// A lock that does not exist (any more).
    #[error("{path}: {why}", path = path.display())]
    NoLock { path: PathBuf, why: String },
}

/// Why `unlock` or `release` refuses to remove a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `unlock`: the lock is alive (without --force), or held shared.
    Alive,
    /// `release`: the lock belongs to another process (without --force), or its owner
    /// is gone.
    NotOwner,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    pub(crate) fn data(msg: impl Into<String>) -> Self {
        Error::Data(msg.into())
    }

    /// A busy lock reports `code` (the command line's `-E`) instead of 75.
    pub(crate) fn with_conflict_code(self, code: Option<u8>) -> Self {
        match self {
            Error::Busy {
                target,
                holder,
                waited,
                conflict_code: None,
            } => Error::Busy {
                target,
                holder,
                waited,
                conflict_code: code,
            },
            other => other,
        }
    }

    /// The exit code this error maps to; the only place that decides it.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::Usage,
            Error::Io { source, .. } => io_code(source),
            Error::LockDir { .. } | Error::LockDirNotDir { .. } | Error::NotALock(_) => {
                ExitCode::CantCreate
            }
            Error::Busy {
                conflict_code: Some(code),
                ..
            } => ExitCode::Conflict(*code),
            Error::Busy { .. } => ExitCode::TempFail,
            Error::LockLost { .. } => ExitCode::Software,
            Error::Missing { .. } => ExitCode::NoInput,
            Error::Data(_) => ExitCode::DataErr,
            Error::Spawn { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => ExitCode::NotFound,
                _ => ExitCode::NotExecutable,
            },
            Error::Internal(_) => ExitCode::Software,
            Error::BadLockId { .. } => ExitCode::Usage,
            Error::Refused {
                refusal: Refusal::Alive,
                ..
            } => ExitCode::TempFail,
            Error::Refused {
                refusal: Refusal::NotOwner,
                ..
            } => ExitCode::NoPerm,
            Error::NoLock { .. } => ExitCode::NoInput,
            Error::Etcd(_) | Error::LeaseLost(_) => ExitCode::Unavailable,
            Error::EtcdAuth(_) => ExitCode::NoPerm,
        }
    }
}

fn io_code(err: &io::Error) -> ExitCode {
    match err.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => ExitCode::NoPerm,
        io::ErrorKind::NotFound => ExitCode::NoInput,
        _ => ExitCode::IoErr,
    }
}
