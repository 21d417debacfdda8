//! The process exit codes lockrun documents (sysexits, as flock(1) uses them).

/// Every exit status lockrun produces: the documented codes of its own, the code given
/// with `-E`, and a command's status passed through by `with`. Commands return one of
/// these; [`crate::error::Error::exit_code`] maps every error to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitCode {
    Success,
    /// `status`: the lock is held by a live process.
    Held,
    /// Bad command line.
    Usage,
    /// `status`: the lock is stale (its holder is gone).
    Stale,
    /// Bad data: invalid JSON, a filter result that is not one value, a schema violation.
    DataErr,
    /// The target file does not exist.
    NoInput,
    /// The etcd backend cannot be reached, or the lease was lost while holding.
    Unavailable,
    /// A bug or an unexpected state inside lockrun.
    Software,
    /// The lock directory or a lock file cannot be created.
    CantCreate,
    /// An I/O error while reading or writing.
    IoErr,
    /// The lock is busy and the wait timed out (or `-n` found it busy).
    TempFail,
    /// Permission denied.
    NoPerm,
    /// `--max-hold` expired and the command was stopped.
    MaxHold,
    /// The command was found but cannot be executed.
    NotExecutable,
    /// The command was not found.
    NotFound,
    /// The lock is busy and `-E CODE` asked for CODE instead of 75.
    Conflict(u8),
    /// `with`: the command's own status (see [`ExitCode::of_command`]).
    Command(i32),
}

/// How a command run by `with` ended, as `waitpid` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildStatus {
    Exited(i32),
    // Windows has no signals: a command's end is always an exit status there.
    #[cfg_attr(windows, allow(dead_code))]
    Signaled(i32),
    /// Stopped by this signal (SIGTSTP, SIGTTIN, SIGTTOU, SIGSTOP); it may continue.
    #[cfg_attr(windows, allow(dead_code))]
    Stopped(i32),
}

impl ExitCode {
    /// The process exit status.
    pub(crate) fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Held => 1,
            ExitCode::Usage => 2,
            ExitCode::Stale => 3,
            ExitCode::DataErr => 65,
            ExitCode::NoInput => 66,
            ExitCode::Unavailable => 69,
            ExitCode::Software => 70,
            ExitCode::CantCreate => 73,
            ExitCode::IoErr => 74,
            ExitCode::TempFail => 75,
            ExitCode::NoPerm => 77,
            ExitCode::MaxHold => 124,
            ExitCode::NotExecutable => 126,
            ExitCode::NotFound => 127,
            ExitCode::Conflict(code) => i32::from(code),
            ExitCode::Command(code) => code,
        }
    }

    /// The child-status rule of `with`: the command's exit status passes through; a
    /// command killed by signal N gives 128+N, as shells report it (lockrun then dies
    /// of signal N itself once the lock is released, which a shell reports the same).
    pub(crate) fn of_command(status: ChildStatus) -> ExitCode {
        match status {
            ChildStatus::Exited(code) => ExitCode::Command(code),
            ChildStatus::Signaled(signal) | ChildStatus::Stopped(signal) => {
                ExitCode::Command(128 + signal)
            }
        }
    }

    /// `with`'s status when releasing the lock failed after the command ended: a failed
    /// command's own status wins; a successful one reports the release error's code.
    pub(crate) fn after_failed_release(self, release: ExitCode) -> ExitCode {
        if self.code() == 0 { release } else { self }
    }
}

/// The table printed in the man page's EXIT STATUS section and the README.
pub(crate) const DOCUMENTED: &[(&str, &str)] = &[
    (
        "0",
        "success (`with`: the command succeeded; `status`: the lock is free; `unlock`: the lock is free or was removed)",
    ),
    ("N", "`with`: the command's own exit status"),
    ("128+N", "`with`: the command was killed by signal N"),
    ("1", "`status`: the lock is held"),
    (
        "2",
        "usage error (one line, and one hint line); `release`: the id is not a <lockdir>/<64 hex>.lock directory, or not a lock lockrun made (nothing is touched)",
    ),
    ("3", "`status`: the lock is stale"),
    (
        "65",
        "data error: invalid JSON, bad filter result, schema violation, nesting deeper than 4096 levels, a filter that recursed too deep",
    ),
    (
        "66",
        "the target file does not exist; `release`: the lock no longer exists (released already, or broken as stale)",
    ),
    (
        "69",
        "etcd backend: etcd cannot be reached (within the wait, at most 10 s), or the lock was lost while held (the lease expired or was revoked; the command was killed)",
    ),
    (
        "70",
        "internal error; also: the lock was broken from outside while held (if the command succeeded); on a system neither Unix nor Windows: not supported",
    ),
    (
        "73",
        "cannot create the lock directory or a lock file, or something that is not a lock (a symlink, a file) sits where one must be",
    ),
    (
        "74",
        "I/O error; also: a JSON command's target is not a regular file (a FIFO, socket, device or directory), or its backup name would be too long",
    ),
    (
        "75",
        "the lock is busy / the wait timed out (or the code given with -E); `unlock`: the lock is alive (without --force) or held shared",
    ),
    (
        "77",
        "permission denied; `release`: the lock belongs to another process (without --force), or its owner is gone; etcd backend: etcd refused the user or password",
    ),
    ("124", "--max-hold expired; the command was stopped"),
    ("126", "the command cannot be executed"),
    ("127", "the command was not found"),
];
