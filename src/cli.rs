//! The command line, as clap sees it. Doc comments here are the `--help` text and the
//! man page.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run commands under a cross-process file lock, and update JSON files atomically.
///
/// Locks are advisory and live in a lock directory (`.locks` beside the target unless
/// --lock-dir or LOCKRUN_DIR says otherwise). A lock whose holder died is detected
/// through the kernel and broken at once; no lock ever needs a human to remove it.
#[derive(Debug, Parser)]
#[command(
    name = "lockrun",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Trace every lock step (probe, break, wait, release) with timings on stderr.
    #[arg(short, long, global = true, env = "LOCKRUN_DEBUG", value_parser = clap::builder::FalseyValueParser::new())]
    pub verbose: bool,

    /// Print nothing but errors (no "waiting for" line).
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command while holding FILE's lock.
    ///
    /// The command runs as a child; lockrun waits for it, releases the lock and exits
    /// with the command's exit status (128+N if it was killed by signal N). SIGTERM and
    /// SIGHUP are forwarded to the command. On Linux the command is killed if lockrun
    /// itself is killed, so it never runs on without its lock.
    #[command(
        visible_alias = "run",
        after_help = "Examples:\n  lockrun with state.json -- ./update-state.sh\n  lockrun with -n -E 0 memory.json -- hook.sh   # a hook that must never wait\n  lockrun with -w 0.5 --label cron-backup db.lock -- backup.sh"
    )]
    With(WithArgs),

    #[command(
        long_about = crate::json::jq_differences::UPDATE_LONG_ABOUT,
        after_help = "Examples:\n  lockrun update memory.json '.sessions += [$s]' --argjson s '{\"id\":\"x\"}' --backup\n  lockrun update -n -E 0 memory.json '.hits += 1'   # a hook that must never wait\n  lockrun update --create '{}' state.json '.last = $t' --arg t \"$(date -u +%FT%TZ)\""
    )]
    /// Apply a jq filter to a JSON file under its lock and replace the file atomically.
    Update(crate::json::cli::UpdateArgs),

    /// Set the value at a JSON Pointer (RFC 6901) under the lock.
    Set(crate::json::cli::SetArgs),

    /// Print the value at a JSON Pointer (RFC 6901), under a shared lock.
    Get(crate::json::cli::GetArgs),

    /// Remove the value at a JSON Pointer (RFC 6901) under the lock.
    Delete(crate::json::cli::DeleteArgs),

    /// Apply an RFC 6902 JSON Patch (all or nothing) or, with --merge, an RFC 7396 merge
    /// patch, under the lock.
    Patch(crate::json::cli::PatchArgs),

    /// Append one JSON value as one compact line to a JSON Lines file, under the lock.
    Append(crate::json::cli::AppendArgs),

    /// Print a JSON file, or the value at a JSON Pointer, under a shared lock.
    ///
    /// Without POINTER, --raw or --compact the file is printed as stored (after checking
    /// that it is valid JSON).
    Read(crate::json::cli::ReadArgs),

    /// Replace a file with stdin atomically, under the lock.
    ///
    /// The data is written to a temp file beside the target, synced and renamed over
    /// it: readers see the old or the new content, never a mix. The old file's mode and
    /// owner are kept; a symlinked target stays a symlink.
    Write(crate::json::cli::WriteArgs),

    /// Print the man page (roff) on stdout.
    #[command(hide = true)]
    Man,

    /// Print a shell completion script on stdout.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// Options of every command that takes a lock.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// Directory that holds the locks [default: .locks beside FILE].
    #[arg(long, value_name = "DIR", env = "LOCKRUN_DIR")]
    pub lock_dir: Option<PathBuf>,

    /// Wait at most SECS for a busy lock (fractions allowed; "inf" waits forever).
    #[arg(
        short = 'w',
        long = "timeout",
        value_name = "SECS",
        env = "LOCKRUN_TIMEOUT",
        default_value = "30",
        value_parser = parse_timeout,
    )]
    pub timeout: Timeout,

    /// Do not wait: fail at once if the lock is busy (same as -w 0).
    #[arg(short = 'n', long = "nonblock")]
    pub nonblock: bool,

    /// Exit with CODE instead of 75 when the lock is busy (hooks use -n -E 0).
    #[arg(short = 'E', long = "conflict-exit-code", value_name = "CODE", value_parser = clap::value_parser!(u8))]
    pub conflict_exit_code: Option<u8>,

    /// Name recorded in the lock and shown to whoever finds it busy (e.g. mcp-server).
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,

    /// Treat a lock held from another host as dead after SECS (default: never).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub stale_after: Option<std::time::Duration>,
}

#[derive(Debug, Clone, Args)]
pub struct WithArgs {
    #[command(flatten)]
    pub lock: LockArgs,

    /// Take a shared lock: shared holders run together, exclusive ones wait for them.
    #[arg(short, long)]
    pub shared: bool,

    /// Pass the lock's descriptor to the command (the command and anything it starts
    /// keep the lock alive), as flock(1) does by default.
    #[arg(long, conflicts_with = "exec")]
    pub inherit: bool,

    /// Replace lockrun with the command (no fork); the lock ends when the command exits.
    #[arg(short = 'F', long = "exec", conflicts_with = "max_hold")]
    pub exec: bool,

    /// Stop the command with SIGTERM after SECS (then SIGKILL after --kill-after); exit 124.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub max_hold: Option<std::time::Duration>,

    /// With --max-hold: how long to wait after SIGTERM before SIGKILL.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_seconds)]
    pub kill_after: std::time::Duration,

    /// The file whose lock to take (it need not exist).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The command to run, and its arguments.
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

/// A wait limit: `None` waits forever.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeout(pub Option<std::time::Duration>);

fn parse_timeout(text: &str) -> Result<Timeout, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity") {
        return Ok(Timeout(None));
    }
    parse_seconds(t).map(|d| Timeout(Some(d)))
}

/// Seconds as a non-negative decimal number: "5", "0.3", "1e-3".
pub fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!(
            "'{text}' is not a non-negative, finite number of seconds"
        ));
    }
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("'{text}': {e}"))
}

impl LockArgs {
    /// The effective wait: -n wins over -w.
    pub fn wait(&self) -> Option<std::time::Duration> {
        if self.nonblock {
            Some(std::time::Duration::ZERO)
        } else {
            self.timeout.0
        }
    }
}
