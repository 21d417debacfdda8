//! The command line, as clap sees it. Doc comments here are the `--help` text and the
//! man page.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod introspect;
pub use introspect::*;

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
// A subcommand's arguments are built only when it is the one invoked: building them all
// was a fifth of lockrun's start-up CPU.
#[command(defer = true)]
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

    /// Tell whether FILE's lock is free, held (by whom, since when) or stale (and why).
    ///
    /// Exit status: 0 free, 1 held, 3 stale. A held lock shows its holder (PID, host,
    /// label, command), mode, since when, and how lockrun knows it is alive: "flock" (the
    /// holder keeps the flock on its info file), "pid" (its PID runs, with the recorded
    /// start token: acquire locks and bash-script locks), "host" (held on another host:
    /// cannot be checked; --stale-after SECS expires it), "creating" (no info yet, within
    /// the 2 s grace) or "readers" (shared holders only). A stale lock shows the proof:
    /// holder exited (flock gone), PID gone, PID reused (start token differs), or no info
    /// past the grace. Shared holders are listed by PID from /proc/locks (Linux).
    ///
    /// JSON (--json): one object. target (string): FILE's canonical path; lock (string):
    /// the lock directory <lockdir>/<hex>.lock; state (string): "free", "held" or
    /// "stale"; liveness (string or null): "flock", "pid", "host", "creating" or
    /// "readers", for a held lock; reason (string or null): the proof for a stale lock,
    /// what keeps a held one alive; pid (number or null), host (string or null), label
    /// (string or null), command (string or null), mode ("exclusive", "shared" or null),
    /// tool (string or null), acquired (string or null: ACQUIRED as recorded, UTC),
    /// held_secs (number or null: seconds since the holder wrote its info); readers
    /// (array of numbers: PIDs of shared holders); readers_unknown (boolean: shared
    /// holders exist but the OS cannot name them).
    #[command(
        after_help = "Examples:\n  lockrun status memory.json\n  lockrun status --json memory.json | jq .pid"
    )]
    Status(StatusArgs),

    /// List every lock and leftover in a lock directory, one line each.
    ///
    /// The directory is --lock-dir DIR, else LOCKRUN_DIR, else the lock directory of FILE
    /// when given (.locks beside it), else .locks in the current directory. Each line
    /// gives the state, the target (from the lock's TARGET, else the entry name) and the
    /// holder or the reason. States: "held", "stale" (as for status); "idle" (a reader
    /// gate nobody uses); "garbage" (a leftover .tmp-*, .stale-* or .released-* that
    /// cleanup would remove); "busy" (a leftover some process is still working on);
    /// "other" (not lockrun's; never touched). A missing lock directory lists nothing.
    ///
    /// JSON (--json): an array of objects with the fields of status --json, plus name
    /// (string: the entry's file name), path (string: its full path) and kind (string:
    /// "lock", "gate", "garbage" or "other"); target is null when unknown.
    #[command(
        after_help = "Examples:\n  lockrun show\n  LOCKRUN_DIR=~/aiconfig/.locks lockrun show --json"
    )]
    Show(ShowArgs),

    /// Remove stale locks and leftovers from a lock directory; say what and why.
    ///
    /// The directory is chosen as for show. A stale lock is removed with the protocol
    /// every acquirer uses to break one (holding the dead info's flock, re-checking its
    /// identity, renaming it away), so a live lock, or one re-created meanwhile, is never
    /// removed. Leftover .tmp-*, .stale-*, .released-* entries go once their info flock
    /// is free and they have not changed for 2 s. Reader gates (<hex>.rw) are kept: they
    /// are tiny, and removing one takes its key's lock, which would make a concurrent
    /// `with -n` fail. Other files are never touched. Each removal is one line with its
    /// reason, then the count (with -q, nothing when nothing was removed).
    ///
    /// JSON (--json): one object. lock_dir (string); dry_run (boolean); count (number:
    /// entries removed, or that would be with --dry-run); removed (array of objects: name
    /// (string), path (string), kind ("lock" or "garbage"), target (string or
    /// null), reason (string)).
    #[command(
        after_help = "Examples:\n  lockrun cleanup --dry-run\n  lockrun cleanup --lock-dir ~/aiconfig/.locks"
    )]
    Cleanup(CleanupArgs),

    /// Remove FILE's lock if it is stale; a live one only with --force.
    ///
    /// A stale lock is broken as an acquirer would break it. A live lock is refused (exit
    /// 75) unless --force; then a warning names the holder, and a live lockrun holder
    /// will report the lock as broken when it releases it. Shared holders cannot be
    /// removed: their hold ends with their processes. A lock that is already free is
    /// not an error.
    Unlock(UnlockArgs),

    /// Take FILE's lock for the calling shell, print its id and exit.
    ///
    /// The lock belongs to the parent process (the shell that runs lockrun; --owner PID
    /// names another), recorded with its start token and LIVENESS: pid, so it is stale
    /// as soon as that process exits and the next acquirer breaks it. The id printed is
    /// the lock directory's path; pass it to `lockrun release` from the same shell. Run
    /// it as id=$(lockrun acquire FILE). Beware of what makes another process the parent:
    /// a pipeline inside $(...) makes a short-lived subshell the owner (the lock is stale
    /// at once), and `sh -c 'lockrun acquire FILE'` execs lockrun in place of the shell,
    /// making sh's caller the owner; --owner $$ says it explicitly.
    #[command(
        after_help = "Examples:\n  id=$(lockrun acquire -w 10 --label deploy state.json) || exit\n  ... work on state.json ...\n  lockrun release \"$id\""
    )]
    Acquire(AcquireArgs),

    /// Release a lock taken with `lockrun acquire`, by its id.
    ///
    /// Only its owner may release it (the calling shell: same PID and start token);
    /// another process needs --force. An id that is not a <64 hex>.lock directory inside
    /// a directory, a symlink, or contains a line break is refused and nothing is
    /// touched (exit 2); a lock that no longer exists exits 66; another owner's lock
    /// exits 77.
    Release(ReleaseArgs),
}

// Options of every command that takes a lock. (A plain comment: with deferred
// subcommands, a flattened struct's doc comment would replace the subcommand's about.)
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
