//! The process exit codes lockrun documents (sysexits, as flock(1) uses them).

/// Every exit status lockrun itself produces. A command run by `with` passes its own
/// status through unchanged; these are the ones lockrun adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    Success = 0,
    /// `status`: the lock is held by a live process.
    Held = 1,
    /// Bad command line.
    Usage = 2,
    /// `status`: the lock is stale (its holder is gone).
    Stale = 3,
    /// Bad data: invalid JSON, a filter result that is not one value, a schema violation.
    DataErr = 65,
    /// The target file does not exist.
    NoInput = 66,
    /// A bug or an unexpected state inside lockrun.
    Software = 70,
    /// The lock directory or a lock file cannot be created.
    CantCreate = 73,
    /// An I/O error while reading or writing.
    IoErr = 74,
    /// The lock is busy and the wait timed out (or `-n` found it busy).
    TempFail = 75,
    /// Permission denied.
    NoPerm = 77,
    /// `--max-hold` expired and the command was stopped.
    MaxHold = 124,
    /// The command was found but cannot be executed.
    NotExecutable = 126,
    /// The command was not found.
    NotFound = 127,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// Exit status for a child killed by `signal`, as shells report it.
    pub fn for_signal(signal: i32) -> i32 {
        128 + signal
    }
}

/// The table printed in the man page's EXIT STATUS section and the README.
pub const DOCUMENTED: &[(&str, &str)] = &[
    (
        "0",
        "success (`with`: the command succeeded; `status`: the lock is free; `unlock`: the lock is free or was removed)",
    ),
    ("N", "`with`: the command's own exit status"),
    ("128+N", "`with`: the command was killed by signal N"),
    ("1", "`status`: the lock is held"),
    (
        "2",
        "usage error; `release`: the id is not a <lockdir>/<64 hex>.lock directory (nothing is touched)",
    ),
    ("3", "`status`: the lock is stale"),
    (
        "65",
        "data error: invalid JSON, bad filter result, schema violation",
    ),
    (
        "66",
        "the target file does not exist; `release`: the lock no longer exists (released already, or broken as stale)",
    ),
    (
        "70",
        "internal error; also: the lock was broken from outside while held (if the command succeeded); on Windows: not supported yet",
    ),
    (
        "73",
        "cannot create the lock directory or a lock file, or something that is not a lock (a symlink, a file) sits where one must be",
    ),
    ("74", "I/O error"),
    (
        "75",
        "the lock is busy / the wait timed out (or the code given with -E); `unlock`: the lock is alive (without --force) or held shared",
    ),
    (
        "77",
        "permission denied; `release`: the lock belongs to another process (without --force), or its owner is gone",
    ),
    ("124", "--max-hold expired; the command was stopped"),
    ("126", "the command cannot be executed"),
    ("127", "the command was not found"),
];
