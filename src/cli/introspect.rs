//! Arguments of the introspection and manual-lock subcommands: status, show, cleanup,
//! unlock, acquire, release.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;

use super::{LockArgs, parse_seconds};

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Directory that holds the locks [default: .locks beside FILE].
    #[arg(long, value_name = "DIR", env = "LOCKRUN_DIR")]
    pub lock_dir: Option<PathBuf>,

    /// Print one JSON object (fields in the description above) instead of text.
    #[arg(long)]
    pub json: bool,

    /// Count a lock held from another host as stale after SECS (default: never).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub stale_after: Option<std::time::Duration>,

    /// The file whose lock to look at (it need not exist).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

// Which lock directory `show` and `cleanup` look at (a plain comment: see LockArgs).
#[derive(Debug, Clone, Args)]
pub struct DirArgs {
    /// The lock directory to look at [default: LOCKRUN_DIR, else FILE's lock directory,
    /// else .locks in the current directory].
    #[arg(long, value_name = "DIR", env = "LOCKRUN_DIR")]
    pub lock_dir: Option<PathBuf>,

    /// Count locks held from another host as stale after SECS (default: never).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub stale_after: Option<std::time::Duration>,

    /// Look at the lock directory FILE's lock lives in (.locks beside FILE).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub dir: DirArgs,

    /// Print a JSON array of objects (fields in the description above) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub dir: DirArgs,

    /// Say what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print one JSON object (fields in the description above) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct UnlockArgs {
    /// Directory that holds the locks [default: .locks beside FILE].
    #[arg(long, value_name = "DIR", env = "LOCKRUN_DIR")]
    pub lock_dir: Option<PathBuf>,

    /// Remove the lock even if its holder is alive (prints a warning naming it).
    #[arg(short, long)]
    pub force: bool,

    /// Count a lock held from another host as stale after SECS (default: never).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub stale_after: Option<std::time::Duration>,

    /// The file whose lock to remove.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct AcquireArgs {
    #[command(flatten)]
    pub lock: LockArgs,

    /// The process the lock belongs to [default: the parent process, i.e. the calling
    /// shell]. It must run on this host; the lock is stale once it exits.
    #[arg(long, value_name = "PID")]
    pub owner: Option<u32>,

    /// The file whose lock to take (it need not exist).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ReleaseArgs {
    /// Release the lock even if it belongs to another process (prints a warning).
    #[arg(short, long)]
    pub force: bool,

    /// The process releasing [default: the parent process, i.e. the calling shell]; it
    /// must be the lock's owner (same PID and start token).
    #[arg(long, value_name = "PID")]
    pub owner: Option<u32>,

    /// The lock id printed by `lockrun acquire`: <lockdir>/<64 hex>.lock.
    #[arg(value_name = "ID")]
    pub id: OsString,
}
