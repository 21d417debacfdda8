//! Arguments of `with`, the command that runs a command under a lock.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;

use super::{LockArgs, parse_seconds};

#[derive(Debug, Clone, Args)]
pub(crate) struct WithArgs {
    #[command(flatten)]
    pub(crate) lock: LockArgs,

    /// Take a shared lock: shared holders run together, exclusive ones wait for them.
    #[arg(short, long)]
    pub(crate) shared: bool,

    /// Also pass the lock's descriptor to the command, as flock(1) does by default: the
    /// lock then lasts while any process keeps it open, even one that left the
    /// command's process group.
    #[arg(long, conflicts_with = "exec")]
    pub(crate) inherit: bool,

    /// Replace lockrun with the command (no fork, no process group of its own): the lock
    /// lasts while the command or any process it started keeps the inherited descriptor.
    #[arg(short = 'F', long = "exec", conflicts_with = "max_hold")]
    pub(crate) exec: bool,

    /// Stop the command's whole process group with SIGTERM after SECS (then SIGKILL after
    /// --kill-after); exit 124.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub(crate) max_hold: Option<std::time::Duration>,

    /// How long to wait after SIGTERM before SIGKILL: with --max-hold, and for what
    /// remains of the group once the command was killed by a signal.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub(crate) kill_after: std::time::Duration,

    /// The file whose lock to take (it need not exist). With --name there is no FILE:
    /// everything after the options is the command (a FILE before `--` is refused).
    #[arg(value_name = "FILE", required_unless_present = "name")]
    pub(crate) file: Option<PathBuf>,

    /// The command to run, and its arguments.
    #[arg(
        value_name = "COMMAND",
        required_unless_present = "name",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub(crate) command: Vec<OsString>,
}

impl WithArgs {
    /// `with --name NAME FILE -- CMD`: with --name there is no FILE, so clap hands the
    /// first word to FILE and the command would be FILE. Clap drops a `--` only when it
    /// comes before the command has begun; then the command it kept is exactly what
    /// follows that `--`, and the word it put in FILE stood before it: a stray FILE.
    /// A `--` inside the command (`--name N git log -- path`) is kept by clap and is
    /// the command's own. `None` when there is no stray FILE.
    pub(crate) fn stray_file(&self, raw: &[OsString]) -> Option<String> {
        self.lock.backend.name.as_ref()?;
        let file = self.file.as_ref()?;
        let dashes = raw.iter().skip(1).position(|a| a == "--")? + 1;
        let after = raw.len() - dashes - 1;
        (self.command.len() == after).then(|| file.display().to_string())
    }
}
