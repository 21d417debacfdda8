//! Arguments of the lock administration subcommands: status, show, cleanup,
//! unlock, acquire, release.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;

use super::{BackendArgs, LockArgs, LockDirArg, parse_seconds};

// How status and unlock judge FILE's lock, and which lock it is when it is not in a lock
// directory (a plain comment: see LockArgs).
#[derive(Debug, Clone, Args)]
pub(crate) struct LookArgs {
    /// Count a lock held from another host as stale after SECS (default: never).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub(crate) stale_after: Option<std::time::Duration>,

    #[command(flatten)]
    pub(crate) backend: BackendArgs,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) dir: LockDirArg,

    /// Print one JSON object (fields in the description above) instead of text.
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) look: LookArgs,

    /// The file whose lock to look at (it need not exist).
    #[arg(
        value_name = "FILE",
        required_unless_present = "name",
        conflicts_with = "name"
    )]
    pub(crate) file: Option<PathBuf>,
}

// Which lock directory `show` and `cleanup` look at (a plain comment: see LockArgs).
#[derive(Debug, Clone, Args)]
pub(crate) struct DirArgs {
    #[command(flatten)]
    pub(crate) dir: LockDirArg,

    /// Count locks held from another host as stale after SECS (default: never).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub(crate) stale_after: Option<std::time::Duration>,

    /// Look at the lock directory FILE's lock lives in (.locks beside FILE).
    #[arg(value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    pub(crate) dir: DirArgs,

    #[command(flatten)]
    pub(crate) backend: BackendArgs,

    /// Print a JSON array of objects (fields in the description above) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct CleanupArgs {
    #[command(flatten)]
    pub(crate) dir: DirArgs,

    #[command(flatten)]
    pub(crate) backend: BackendArgs,

    /// Say what would be removed, remove nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Print one JSON object (fields in the description above) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct UnlockArgs {
    #[command(flatten)]
    pub(crate) dir: LockDirArg,

    /// Remove the lock even if its holder is alive (prints a warning naming it).
    #[arg(short, long)]
    pub(crate) force: bool,

    #[command(flatten)]
    pub(crate) look: LookArgs,

    /// The file whose lock to remove.
    #[arg(
        value_name = "FILE",
        required_unless_present = "name",
        conflicts_with = "name"
    )]
    pub(crate) file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct AcquireArgs {
    #[command(flatten)]
    pub(crate) lock: LockArgs,

    /// The process the lock belongs to [default: the parent process, i.e. the calling
    /// shell], or the shell it is a forked subshell of. It must run on this host; the
    /// lock is stale once it exits.
    #[arg(long, value_name = "PID")]
    pub(crate) owner: Option<u32>,

    /// The file whose lock to take (it need not exist).
    #[arg(
        value_name = "FILE",
        required_unless_present = "name",
        conflicts_with = "name"
    )]
    pub(crate) file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ReleaseArgs {
    /// Release the lock even if it belongs to another process (prints a warning).
    #[arg(short, long)]
    pub(crate) force: bool,

    /// The process releasing [default: the parent process, i.e. the calling shell], or
    /// the shell it is a forked subshell of; it must be the lock's owner (same PID and
    /// start token).
    #[arg(long, value_name = "PID")]
    pub(crate) owner: Option<u32>,

    #[command(flatten)]
    pub(crate) backend: BackendArgs,

    /// The lock id printed by `lockrun acquire`: <lockdir>/<64 hex>.lock, or for an etcd
    /// lock etcd://HOST:PORT[,...]/<key>.
    #[arg(value_name = "ID")]
    pub(crate) id: OsString,
}
