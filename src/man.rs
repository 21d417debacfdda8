//! The man page, generated from the clap definition plus the sections clap cannot know
//! (every subcommand's options, EXIT STATUS, ENVIRONMENT, FILES, PLATFORMS, EXAMPLES, NOTES,
//! SEE ALSO).
//! `man/lockrun.1` is this output; a test fails when the checked-in copy is stale.

use std::io::{self, Write};

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit_code::DOCUMENTED;

const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "LOCKRUN_DIR",
        "Lock directory used when --lock-dir is not given (e.g. ~/aiconfig/.locks, the layout of the bash lock scripts, so both exclude each other).",
    ),
    (
        "LOCKRUN_TIMEOUT",
        "Default for -w/--timeout, in seconds (\"inf\" waits forever). Default 30.",
    ),
    ("LOCKRUN_DEBUG", "Set to 1 for the same trace as -v."),
    (
        "LOCKRUN_BACKEND",
        "Default for --backend: etcd://HOST:PORT[,HOST:PORT...] (etcds:// for TLS) keeps locks in etcd; empty or unset: the local lock directory.",
    ),
    (
        "LOCKRUN_ETCD_USER, LOCKRUN_ETCD_PASSWORD",
        "etcd user and password, for an etcd with auth enabled. Read from the environment only, never from the command line (which other users can read in ps).",
    ),
    (
        "LOCKRUN_ETCD_CA, LOCKRUN_ETCD_CERT, LOCKRUN_ETCD_KEY, LOCKRUN_ETCD_PREFIX, LOCKRUN_LEASE_TTL",
        "Defaults for --etcd-ca, --etcd-cert, --etcd-key, --etcd-prefix and --lease-ttl.",
    ),
    (
        "LOCKRUN_FENCING_TOKEN",
        "Set by `with` for its command when the lock is in etcd: the lock key's creation revision, larger for every new holder. Pass it with each write so the store can refuse a token smaller than the largest it has seen.",
    ),
    (
        "XDG_STATE_HOME, HOME, LOCALAPPDATA",
        "A --name lock without --lock-dir or LOCKRUN_DIR lives in $XDG_STATE_HOME/lockrun, else ~/.local/state/lockrun (on Windows %LOCALAPPDATA%\\lockrun, whatever HOME says, so that Git Bash, PowerShell and cmd share one lock per name).",
    ),
    (
        "NO_COLOR",
        "When set and not empty, --help is not coloured. Help is coloured only when stdout is a terminal; nothing else lockrun prints is ever coloured.",
    ),
];

const FILES: &[(&str, &str)] = &[
    (
        "<lockdir>/<sha256>.lock/",
        "The lock: a directory whose existence means held. <sha256> is the lowercase hex SHA-256 of the target's canonical absolute path.",
    ),
    (
        "<lockdir>/<sha256>.lock/info",
        "KEY: value lines: PID, ACQUIRED, HOSTNAME (as the bash scripts write them), then TOOL, PID_START, UID, MODE, LIVENESS, TARGET, LABEL, COMMAND, NONCE, and for `with` the CHILD (command PID), CHILD_START (its start token) and CHILD_PGID (the process group it leads) lines. The holder keeps an exclusive flock(2) on it while alive; a taker of a dead lock ends what remains of the CHILD_PGID group first (see NOTES).",
    ),
    (
        "<lockdir>/<sha256>.rw",
        "Reader/writer gate of shared locks (flock LOCK_SH by readers, LOCK_EX by writers). A `with -s` appends its command's CHILD, CHILD_START and CHILD_PGID lines; whoever next finds the gate free of readers ends what remains of those groups, then empties it.",
    ),
    (
        "etcd key <prefix><name>//<lease>",
        "With --backend etcd://: each holder and waiter of lock <name> (FILE's canonical path, or --name) puts this key, attached to its own lease (16 hex digits), valued with the same KEY: value lines as info. The oldest key holds the lock (shared keys: every shared key older than any exclusive one). <prefix> is lockrun/ unless --etcd-prefix.",
    ),
    (
        "<lockdir>/.tmp-*, .stale-*, .released-*",
        "Short-lived entries of lock creation, breaking and release; garbage if a process died at that instant.",
    ),
];

const NOTES: &[(&str, &str)] = &[
    (
        "The command tree",
        "`with` runs the command in a process group of its own, the unit shells and timeout(1) use for a command and everything it starts: kill(2) on a group reaches each member atomically, and a group's number is not reused while any member lives. SIGTERM and SIGHUP sent to lockrun, SIGINT and SIGQUIT sent to lockrun by a process, and --max-hold's SIGTERM then SIGKILL go to the whole group. When the command exits, lockrun waits for the rest of its group before it releases; when it dies of a signal, the rest gets SIGTERM, then SIGKILL after --kill-after. Only a process that deliberately leaves the group (setsid, a daemon) outlives the lock.",
    ),
    (
        "The terminal",
        "When lockrun runs in the foreground of a terminal, the command's group becomes the terminal's foreground group before the command starts (else reading the terminal would stop it with SIGTTIN), and the terminal is handed back when the group is gone. Ctrl-C then reaches the command's group; lockrun releases the lock and dies of the command's signal with its default action, and a terminal's SIGINT or SIGQUIT is passed to lockrun's own group too, as the terminal would have, so a shell loop or script that runs lockrun stops. Ctrl-Z stops the command and then lockrun's own group; when that is continued (fg), the terminal goes back to the command, which is continued.",
    ),
    (
        "A killed lockrun",
        "If lockrun itself dies (SIGKILL), its flock goes at once but its command tree may run on (on Linux the parent-death signal reaches only the first process; macOS has none). info records the group (CHILD_PGID) and its leader's start token (CHILD_START, with the boot id). A taker of the dead lock, on the same host and boot only, gives the group 50 ms, SIGKILLs what remains, and waits until no member runs; a zombie (exited, never reaped) counts as gone. It touches the group only if its leader is the recorded process or gone: a PID that names a living group is never reused, so a gone leader means the same group, and a different process under that PID means the old group emptied. Shared (-s) holders record the same lines in the reader gate, and the next exclusive taker ends their groups. -v traces each step.",
    ),
    (
        "--inherit and -F/--exec",
        "--inherit also passes the lock's descriptors to the command: the flock then lasts while any process keeps them open, even one that left the group, as with flock(1). -F/--exec replaces lockrun by the command (no group of its own, no supervision): the lock lasts while the command or any process it started keeps the inherited descriptor open, and --max-hold does not apply.",
    ),
    (
        "The owner of acquire",
        "The owner is the shell that will run release. Command substitution, ( ... ), pipelines and functions often run acquire in a forked subshell that exits at once; a forked subshell runs the same executable with the same command line as the shell it was forked from. So lockrun walks up from its parent (or from --owner PID) while the next process up has the same executable (/proc/PID/exe), the same command line (/proc/PID/cmdline) and, on Linux, the same stack start (/proc/PID/stat field 28), which a fork copies and a new exec randomises: a shell started by another with the same command line keeps its own lock. On macOS the executable path and the exec-time arguments and environment (KERN_PROCARGS2) are compared. release applies the same rule to find the calling shell.",
    ),
];

const PLATFORMS: &[(&str, &str)] = &[
    ("Linux", "Everything described here."),
    (
        "macOS",
        "The same locks and commands. Lacking: a parent-death signal (after a SIGKILL of lockrun its command tree runs on until the next taker ends it, see NOTES) and /proc/locks (show counts shared holders but cannot name them).",
    ),
    (
        "Windows",
        "The same layout, commands, messages and exit codes, with these differences. The key is the path in its plain form (C:\\..., \\\\server\\share\\...; \\\\?\\ forms and forward slashes normalised, the drive letter upper case), case-folded before hashing because Windows file names compare without case; a --name is hashed as written (a name must mean one lock on every host), so a name spelling a path is that path's lock only in lower case. The holder keeps LockFileEx on one byte far past the end of info (a Windows lock is mandatory, and a whole-file lock would hide info from readers). A lock directory is renamed into place with its info closed and locked just after, and released or broken by moving info itself out (Windows cannot rename a directory that has an open file in it); the holder's running process (PID and creation time) vouches for it in between. Shared holders (with -s, read) name themselves in the reader gate (READER lines), because Windows cannot list who holds a lock; show names those still running. with runs the command in a Job object that ends with lockrun (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE; created suspended, assigned, then resumed), so nothing of the command outlives the lock. The command leads a console process group of its own (CREATE_NEW_PROCESS_GROUP), so that --max-hold can send it a Ctrl-Break (Windows' nearest to SIGTERM) and end the whole job after --kill-after; Windows disables Ctrl-C in such a group and cannot aim a Ctrl-C at one, so lockrun passes each Ctrl-C or Ctrl-Break it gets on to the command as a Ctrl-Break, then releases and exits with the command's status. --inherit and -F/--exec are refused (usage error: they pass a Unix descriptor). acquire's owner is the calling shell (PowerShell or cmd, which start programs directly; past the cmd /c that cmd's for /f runs it under, which ends with it; or Git Bash past its forked bash.exe, told by executable name because a Cygwin fork's command line is not its parent's: a bash script run from an interactive Git Bash gives its locks to the interactive shell), identified by PID and creation time; its COMMAND is the shell's command line. A replace uses ReplaceFileW (the old file's attributes and ACL stay); a read or replace retries sharing violations (virus scanners, indexers) for as long as the lock may be waited for (-w), then fails with the temp file removed. A --name lock lives in %LOCALAPPDATA%\\lockrun (XDG_STATE_HOME and HOME only where it is unset), so that Git Bash, which sets HOME, and PowerShell or cmd, which do not, share one lock per name. UID is recorded as 0. The etcd backend is built on Unix only, so --backend (or a non-empty LOCKRUN_BACKEND) is refused with one line and exit 69 before anything is locked or run.",
    ),
];

const EXAMPLES: &[(&str, &str)] = &[
    (
        "lockrun with state.json -- ./update-state.sh",
        "Run a script while holding the lock of state.json; wait up to 30 s for it.",
    ),
    (
        "lockrun with -w 2 -E 0 memory.json -- ./hook.sh",
        "A hook that updates a shared file: waits up to 2 s for another session's update (milliseconds), then gives up with exit 0 rather than hang.",
    ),
    (
        "lockrun with -w inf --max-hold 3600 /var/run/backup.lock -- backup.sh",
        "A cron job that never overlaps itself and is stopped after an hour.",
    ),
    (
        "LOCKRUN_DIR=~/aiconfig/.locks lockrun with notes.json -- cat notes.json",
        "Share locks with the old file-lock.sh scripts during a migration.",
    ),
    (
        "lockrun with -n -E 0 index.lock -- ./reindex.sh",
        "Work that may be skipped when another session is doing it: one try, exit 0 if busy.",
    ),
    (
        "id=$(lockrun acquire state.json) && ... && lockrun release \"$id\"",
        "Hold a lock across several commands of one shell script.",
    ),
    (
        "LOCKRUN_BACKEND=etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379 lockrun with --name nightly-backup -- backup.sh",
        "A job that runs on several hosts but never on two at once: the lock is in etcd.",
    ),
    (
        "lockrun status --json memory.json | jq -r .state",
        "Machine-readable lock state (free, held or stale) for scripts.",
    ),
];

/// The whole page as roff.
pub(crate) fn render() -> io::Result<Vec<u8>> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone())
        .date("")
        .source(format!("lockrun {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    render_commands(&mut out, &cmd)?;
    section(&mut out, "EXIT STATUS", DOCUMENTED)?;
    section(&mut out, "ENVIRONMENT", ENVIRONMENT)?;
    section(&mut out, "FILES", FILES)?;
    section(&mut out, "PLATFORMS", PLATFORMS)?;
    section(&mut out, "EXAMPLES", EXAMPLES)?;
    section(&mut out, "NOTES", NOTES)?;
    // The on-disk protocol is a page of its own (man/lockrun-protocol.5, checked by
    // tests/cli/docs.rs against what the executable writes).
    writeln!(
        out,
        ".SH \"SEE ALSO\"\n\\fBlockrun-protocol\\fR(5): the lock directory, the info file and the protocol every taker follows; \\fBflock\\fR(1), \\fBflock\\fR(2)"
    )?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

fn render_commands(out: &mut Vec<u8>, cmd: &clap::Command) -> io::Result<()> {
    writeln!(out, ".SH COMMANDS")?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut sub = sub.clone().bin_name(format!("lockrun {}", sub.get_name()));
        let usage = sub.render_usage().to_string();
        let usage = usage.trim_start_matches("Usage: ");
        writeln!(out, ".SS \"{}\"", escape(usage))?;
        let about = sub
            .get_long_about()
            .or(sub.get_about())
            .map(|s| s.to_string())
            .unwrap_or_default();
        for para in about.split("\n\n") {
            writeln!(out, ".PP\n{}", escape(&para.replace('\n', " ")))?;
        }
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let mut names = Vec::new();
            if let Some(s) = arg.get_short() {
                names.push(format!("-{s}"));
            }
            if let Some(l) = arg.get_long() {
                names.push(format!("--{l}"));
            }
            let value = arg
                .get_value_names()
                .map(|v| {
                    v.iter()
                        .map(|n| format!("<{n}>"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let head = if names.is_empty() {
                value.clone()
            } else if arg.get_action().takes_values() {
                format!("{} {value}", names.join(", "))
            } else {
                names.join(", ")
            };
            let mut help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|s| s.to_string())
                .unwrap_or_default();
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            if !defaults.is_empty() {
                help.push_str(&format!(" [default: {}]", defaults.join(", ")));
            }
            if let Some(env) = arg.get_env() {
                help.push_str(&format!(" [env: {}]", env.to_string_lossy()));
            }
            writeln!(out, ".TP\n\\fB{}\\fR\n{}", escape(&head), escape(&help))?;
        }
    }
    Ok(())
}

fn section(out: &mut Vec<u8>, title: &str, items: &[(&str, &str)]) -> io::Result<()> {
    writeln!(out, ".SH \"{title}\"")?;
    for (term, text) in items {
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", escape(term), escape(text))?;
    }
    Ok(())
}

/// Roff-safe text: backslashes and dashes escaped, no line starting with a control
/// character.
fn escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    escaped
        .lines()
        .map(|l| {
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
