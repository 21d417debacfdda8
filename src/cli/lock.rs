//! The arguments every lock-taking command shares, and the number parsers.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

// The one declaration of --lock-dir, flattened wherever a command names a lock
// directory (a plain comment: see LockArgs). `show` and `cleanup`, whose FILE is
// optional, say in their description where they look without it.
#[derive(Debug, Clone, Args)]
pub(crate) struct LockDirArg {
    /// Directory that holds the locks [default: .locks beside FILE].
    #[arg(long, value_name = "DIR", env = "LOCKRUN_DIR")]
    pub(crate) lock_dir: Option<PathBuf>,
}

// Options of every command that takes a lock. (A plain comment: with deferred
// subcommands, a flattened struct's doc comment would replace the subcommand's about.)
#[derive(Debug, Clone, Args)]
pub(crate) struct LockArgs {
    #[command(flatten)]
    pub(crate) dir: LockDirArg,

    /// Wait at most SECS for a busy lock (fractions allowed; "inf" waits forever).
    #[arg(
        short = 'w',
        long = "timeout",
        value_name = "SECS",
        env = "LOCKRUN_TIMEOUT",
        default_value = "30",
        value_parser = parse_timeout,
        allow_negative_numbers = true,
    )]
    pub(crate) timeout: Timeout,

    /// Do not wait: fail at once if the lock is busy (same as -w 0).
    #[arg(short = 'n', long = "nonblock")]
    pub(crate) nonblock: bool,

    /// Exit with CODE instead of 75 when the lock is busy (hooks use -w 2 -E 0).
    #[arg(short = 'E', long = "conflict-exit-code", value_name = "CODE", value_parser = clap::value_parser!(u8), allow_negative_numbers = true)]
    pub(crate) conflict_exit_code: Option<u8>,

    /// Name recorded in the lock and shown to whoever finds it busy (e.g. mcp-server).
    #[arg(long, value_name = "NAME")]
    pub(crate) label: Option<String>,

    /// Treat a lock held from another host as dead after SECS (default: never).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub(crate) stale_after: Option<Duration>,
}

/// A wait limit: `None` waits forever.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Timeout(pub(crate) Option<Duration>);

fn parse_timeout(text: &str) -> Result<Timeout, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity") {
        return Ok(Timeout(None));
    }
    parse_seconds(t).map(|d| Timeout(Some(d)))
}

/// Seconds as a non-negative decimal number: "5", "0.3", "1e-3".
pub(crate) fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if secs < 0.0 {
        return Err(format!("'{text}': a number of seconds cannot be negative"));
    }
    if !secs.is_finite() {
        return Err(format!("'{text}' is not a finite number of seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("'{text}': {e}"))
}

impl LockArgs {
    /// The effective wait: -n wins over -w.
    pub(crate) fn wait(&self) -> Option<Duration> {
        if self.nonblock {
            Some(Duration::ZERO)
        } else {
            self.timeout.0
        }
    }
}
