//! The command line, as clap sees it. Doc comments here are the `--help` text and the
//! man page.

use clap::{Parser, Subcommand};

mod etcd;
mod jq_help;
mod json;
mod lock;
mod lock_admin;
pub(crate) mod usage;
mod with;

pub(crate) use etcd::*;
pub(crate) use json::*;
pub(crate) use lock::*;
pub(crate) use lock_admin::*;
pub(crate) use with::*;

/// Run commands under a cross-process file lock, and update JSON files atomically.
///
/// Locks are advisory and live in a lock directory (`.locks` beside the target unless
/// --lock-dir or LOCKRUN_DIR says otherwise). A lock whose holder died is detected
/// through the kernel and broken at once; no lock ever needs a human to remove it.
///
/// The JSON commands (update, set, get, delete, patch, append, read, write) read and
/// replace only regular files, or a symlink to one (a dangling symlink too: the file is
/// created where it points and the link stays a link). A FIFO, socket, device or
/// directory is refused before anything is opened or locked, with one line naming its
/// type (exit 74); append too, so a FIFO with no reader can never hang a hook. Arrays
/// and objects nest at most 4096 levels in every document they read (the file, stdin,
/// --argjson, --create, a set value, a patch, a schema) and write (exit 65 past it), so
/// whatever lockrun writes it reads back. A filter that recurses or nests too deep
/// ends with exit 65, nothing written and the lock released. A failed write (disk
/// full, `ulimit -f`) leaves the file byte for byte, mtime included. Every message is
/// one line; paths, labels and commands in it have control characters escaped.
#[derive(Debug, Parser)]
#[command(
    name = "lockrun",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// Trace every lock step (probe, break, wait, release) with timings on stderr.
    #[arg(short, long, global = true, env = "LOCKRUN_DEBUG", value_parser = clap::builder::FalseyValueParser::new())]
    pub(crate) verbose: bool,

    /// Print nothing but errors (no "waiting for" line).
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
// A subcommand's arguments are built only when it is the one invoked: building them all
// was a fifth of lockrun's start-up CPU.
#[command(defer = true)]
pub(crate) enum Command {
    /// Run a command while holding FILE's lock.
    ///
    /// The command runs as a child in a process group of its own (the terminal's
    /// foreground when lockrun has the terminal); lockrun waits for it and for every
    /// process of its group, releases the lock and exits with the command's exit status.
    /// A command killed by signal N makes lockrun release and die of signal N (a shell
    /// sees 128+N; a loop stops on Ctrl-C). SIGTERM, SIGHUP, SIGINT and SIGQUIT sent to
    /// lockrun go to the command's whole group. If lockrun itself is killed, the next
    /// taker ends what remains of the group before its own command starts: no process of
    /// the command outlives its lock unless it left the group (setsid, daemons).
    #[command(
        visible_alias = "run",
        after_help = "Examples:\n  lockrun with state.json -- ./update-state.sh\n  lockrun with -w 2 -E 0 memory.json -- hook.sh   # a hook: short wait, never fails\n  lockrun with -w 0.5 --label cron-backup db.lock -- backup.sh"
    )]
    With(WithArgs),

    #[command(
        long_about = jq_help::UPDATE_LONG_ABOUT,
        after_help = "Examples:\n  lockrun update memory.json '.sessions += [$s]' --argjson s '{\"id\":\"x\"}' --backup\n  lockrun update -w 2 -E 0 memory.json '.hits += 1'   # a hook: short wait, never fails\n  lockrun update --create '{}' state.json '.last = $t' --arg t \"$(date -u +%FT%TZ)\""
    )]
    /// Apply a jq filter to a JSON file under its lock and replace the file atomically.
    Update(UpdateArgs),

    /// Set the value at a JSON Pointer (RFC 6901) under the lock.
    Set(SetArgs),

    /// Print the value at a JSON Pointer (RFC 6901), under a shared lock.
    Get(GetArgs),

    /// Remove the value at a JSON Pointer (RFC 6901) under the lock.
    Delete(DeleteArgs),

    /// Apply an RFC 6902 JSON Patch (all or nothing) or, with --merge, an RFC 7396 merge
    /// patch, under the lock.
    Patch(PatchArgs),

    /// Append one JSON value as one compact line to a JSON Lines file, under the lock.
    ///
    /// The file must be a regular file (created if missing); a FIFO or a device is
    /// refused. A failed append (disk full, `ulimit -f`) is cut back off: the file keeps
    /// its bytes and its mtime.
    Append(AppendArgs),

    /// Print a JSON file, or the value at a JSON Pointer, under a shared lock.
    ///
    /// Without POINTER, --raw or --compact the file is printed as stored (after checking
    /// that it is valid JSON).
    Read(ReadArgs),

    /// Replace a file with stdin atomically, under the lock.
    ///
    /// The data is written to a temp file beside the target, synced and renamed over
    /// it: readers see the old or the new content, never a mix. The old file's mode and
    /// owner are kept; a symlinked target stays a symlink (a dangling one too: the file
    /// is created where it points).
    Write(WriteArgs),

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
    /// "other" ("not a lockrun entry: why": a name lockrun does not give, or an entry it
    /// cannot read, such as a leftover whose info is a symlink; never touched, and never
    /// hiding the other entries). A missing lock directory lists nothing. Names, labels
    /// and commands are printed with control characters escaped.
    ///
    /// JSON (--json): an array of objects with the fields of status --json, plus name
    /// (string: the entry's file name), path (string: its full path) and kind (string:
    /// "lock", "gate", "garbage" or "other"); target is null when unknown.
    ///
    /// With --backend etcd://... it lists the locks in etcd under the prefix instead
    /// (holders, shared readers, waiters; name is the lock's name, path its key), and
    /// keys there that lockrun did not write as "other"; never the lock directory.
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
    /// `with -n` fail. Other files are never touched, and only what the protocol creates
    /// is removed (a lock directory's info, then the directory; never a recursive
    /// delete). Each removal is one line with its reason; an entry that is not a lockrun
    /// entry, or cannot be read, is one "skipped" line and leaves the others unaffected
    /// (exit 0); then the count (with -q, nothing when nothing was removed).
    ///
    /// JSON (--json): one object. lock_dir (string); dry_run (boolean); count (number:
    /// entries removed, or that would be with --dry-run); removed (array of objects: name
    /// (string), path (string), kind ("lock" or "garbage"), target (string or
    /// null), reason (string)); skipped (array of objects: name (string), path
    /// (string), reason (string)).
    ///
    /// With --backend etcd://... nothing in etcd is removed: a lock there ends with its
    /// holder's lease, so none is ever stale. It says so in one line and lists keys under
    /// the prefix that lockrun did not write as skipped (JSON: lock_dir null, backend and
    /// prefix strings). It removes this host's notes of lost acquire locks whose keeper
    /// and owner shell are both gone (kind "note").
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
    /// The lock belongs to the shell that will run `lockrun release`, recorded with its
    /// start token and LIVENESS: pid, so it is stale as soon as that shell exits and the
    /// next acquirer breaks it. lockrun starts from its parent (or --owner PID) and looks
    /// past forked subshells ($(...), ( ... ), pipelines, functions run in a subshell):
    /// while the next process up runs the same executable with the same command line
    /// (and, on Linux, the same address-space layout, which only a fork shares), that
    /// process is the shell. The id printed is the lock directory's path; pass it to
    /// `lockrun release` from the same shell or a subshell of it. Run it as
    /// id=$(lockrun acquire FILE). `sh -c 'lockrun acquire FILE'` execs lockrun in place
    /// of sh, making sh's caller the owner; --owner $$ says it explicitly.
    ///
    /// With --backend etcd://... the lock is taken in etcd and the id is
    /// etcd://HOST:PORT[,...]/<key>. acquire leaves a keeper process behind (its own
    /// session, no terminal, standard streams on /dev/null) that keeps the lease alive
    /// while the owner runs and revokes it within 0.1 s once the owner is gone. A lease
    /// lost meanwhile (etcd unreachable past the TTL, unlock --force, the keeper killed)
    /// cannot stop the shell's work: status shows it, and the next release says "lost the
    /// lock on NAME: ..." and exits 69.
    #[command(
        after_help = "Examples:\n  id=$(lockrun acquire -w 10 --label deploy state.json) || exit\n  ... work on state.json ...\n  lockrun release \"$id\""
    )]
    Acquire(AcquireArgs),

    /// Release a lock taken with `lockrun acquire`, by its id.
    ///
    /// Only its owner may release it (the calling shell, past forked subshells as for
    /// acquire: same PID and start token);
    /// another process needs --force. An id that is not a <64 hex>.lock directory inside
    /// a directory, a symlink, or contains a line break is refused and nothing is
    /// touched (exit 2); so is, even with --force, a directory that is not a lock
    /// lockrun made: no info file, an info that is not a regular file or not lock info
    /// (PID, ACQUIRED and HOSTNAME lines), or other files beside it. A lock that no
    /// longer exists exits 66; another owner's lock exits 77. An etcd id
    /// (etcd://HOST:PORT[,...]/<key>) is released by revoking its lease; the TLS options
    /// and LOCKRUN_ETCD_* apply; an etcd lock whose lease was lost exits 69.
    Release(ReleaseArgs),

    /// Keep an `acquire` lease in etcd alive while its owner lives (started by acquire).
    #[command(hide = true, name = "etcd-keeper")]
    EtcdKeeper(KeeperArgs),
}

impl Command {
    /// The `-E CODE` of a command that takes a lock.
    pub(crate) fn conflict_exit_code(&self) -> Option<u8> {
        let lock = match self {
            Command::With(a) => &a.lock,
            Command::Update(a) => &a.common.lock,
            Command::Set(a) => &a.common.lock,
            Command::Delete(a) => &a.common.lock,
            Command::Patch(a) => &a.common.lock,
            Command::Write(a) => &a.common.lock,
            Command::Append(a) => &a.lock,
            Command::Read(a) => &a.lock,
            Command::Get(a) => &a.lock,
            Command::Acquire(a) => &a.lock,
            Command::Man
            | Command::Completions { .. }
            | Command::Status(_)
            | Command::Show(_)
            | Command::Cleanup(_)
            | Command::Unlock(_)
            | Command::Release(_)
            | Command::EtcdKeeper(_) => return None,
        };
        lock.conflict_exit_code
    }
}
