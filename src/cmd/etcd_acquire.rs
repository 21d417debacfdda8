//! `acquire` and `release` with an etcd backend, and the keeper `acquire` leaves behind.
//!
//! A lease lives only while someone keeps it alive, and `acquire` exits at once (its
//! caller runs it as `id=$(lockrun acquire ...)`). So `acquire` takes the lock as `with`
//! does, then starts a keeper: lockrun itself (`lockrun etcd-keeper`, hidden), in a
//! session of its own with its standard streams on /dev/null, so that the caller's
//! `$(...)` returns at once and no Ctrl-C or hangup meant for the shell's jobs reaches
//! it. The keeper confirms the lease with etcd and says "ready" on a pipe; only then
//! does `acquire` stop its own keepalive and print the id. From then on the keeper keeps
//! the lease alive while the owner shell (the process a local `acquire` lock belongs to,
//! same PID and start token) lives, and revokes it the moment the owner is gone.
//!
//! `release ID` revokes the lease. The keeper cannot kill a shell's work when the lease
//! is lost (etcd unreachable past the TTL, or `unlock --force`): it writes why in a small
//! state file of this host (`$XDG_STATE_HOME/lockrun/etcd-leases/<lease>`), and the
//! `release` that comes next says "lost the lock on NAME: ..." and exits 69. The same
//! file tells the keeper that a `release` revoked the lease on purpose.
//!
//! The id is `etcd://HOST:PORT[,...]/<key>`: the members and the lock's key, whose last
//! 16 hex digits are the lease.

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{KeeperArgs, ReleaseArgs};
use crate::error::{Error, Refusal, Result};
use crate::exit_code::ExitCode;
use crate::lock::etcd::lock::{DEFAULT_PREFIX, Held};
use crate::lock::etcd::{self, LOOK_TIMEOUT};
use crate::lock::info::Info;
use crate::lock::{EtcdSettings, LockOptions};
use crate::sys;

use super::lock_report;

/// How often the keeper looks whether its owner still runs: the lock is handed on this
/// long (plus one revoke) after the owner dies.
const OWNER_POLL: Duration = Duration::from_millis(100);
/// Once the lease is lost, the keeper only waits to tidy up its state file.
const LOST_POLL: Duration = Duration::from_secs(1);
const READY: &str = "ready";
/// Said instead when the keeper could not write its note: it keeps the lease all the
/// same, but a loss can then not be told from a release.
const READY_WITHOUT_NOTE: &str = "ready without a note";

/// `acquire` with an etcd backend: the lock for `owner`, kept by a keeper process.
pub(crate) fn acquire(
    file: &Path,
    opts: &LockOptions,
    settings: &EtcdSettings,
    owner: u32,
) -> Result<ExitCode> {
    let guard = crate::lock::acquire(file, opts)?;
    let held = guard
        .into_remote()
        .ok_or_else(|| Error::Internal("an etcd lock without its lease".into()))?;
    // Keys are made of the prefix and the name, both text.
    let key = String::from_utf8_lossy(held.key()).into_owned();
    let prefix = settings.prefix.as_deref().unwrap_or(DEFAULT_PREFIX);
    let name = name_of_key(&key, prefix).to_string();
    // On any error `held` is dropped, which revokes the lease.
    start_keeper(&held, &key, &name, settings, owner)?;
    let id = format!("{}/{key}\n", settings.url);
    if let Err(e) = lock_report::write_stdout(&id) {
        // Nobody could release it: tell the keeper, then revoke (on drop).
        append_state(held.lease(), "RELEASED\n");
        return Err(e);
    }
    held.hand_over();
    Ok(ExitCode::Success)
}

/// NAME in `<prefix><NAME>//<16 hex>`.
fn name_of_key<'a>(key: &'a str, prefix: &str) -> &'a str {
    let rest = key.strip_prefix(prefix).unwrap_or(key);
    rest.rsplit_once("//").map_or(rest, |(name, _)| name)
}

fn start_keeper(
    held: &Held,
    key: &str,
    name: &str,
    settings: &EtcdSettings,
    owner: u32,
) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| Error::io("/proc/self/exe", e))?;
    let mut cmd = Command::new(&exe);
    cmd.arg("etcd-keeper")
        .arg("--backend")
        .arg(&settings.url)
        .arg("--name")
        .arg(name)
        .arg("--lease")
        .arg(format!("{:016x}", held.lease()))
        .arg("--key")
        .arg(key)
        .arg("--revision")
        .arg(held.fencing_token().to_string())
        .arg("--owner")
        .arg(owner.to_string());
    if let Some(token) = sys::process_start_token(owner) {
        cmd.arg("--owner-start").arg(token);
    }
    if let Some(p) = &settings.prefix {
        cmd.arg("--etcd-prefix").arg(p);
    }
    if let Some(t) = settings.ttl {
        cmd.arg("--lease-ttl").arg(t.as_secs().to_string());
    }
    for (option, file) in [
        ("--etcd-ca", &settings.ca),
        ("--etcd-cert", &settings.cert),
        ("--etcd-key", &settings.key),
    ] {
        if let Some(f) = file {
            // The keeper runs in `/`: a relative path must not change its meaning.
            let f = std::path::absolute(f).map_err(|e| Error::io(f, e))?;
            cmd.arg(option).arg(f);
        }
    }
    // The user and password reach it through the environment it inherits, never argv.
    let mut child = cmd
        .env_remove("LOCKRUN_DEBUG")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| Error::Spawn {
            program: exe.display().to_string(),
            source,
        })?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        // Bounded: the keeper's one call to etcd has a deadline, then it says a line or
        // exits.
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let line = line.trim();
    if line == READY_WITHOUT_NOTE {
        let dir = state_path(held.lease())
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .map_or_else(
                || "no state directory".to_string(),
                |d| d.display().to_string(),
            );
        crate::quote::say(&format!(
            "warning: the keeper of the lease on {name} cannot keep its note in {dir}: if the lock is lost, release will say it was released already (66)"
        ));
        return Ok(());
    }
    if line == READY {
        // Not waited for: it outlives us, and init reaps it.
        return Ok(());
    }
    let _ = child.kill();
    let _ = child.wait();
    let why = line.strip_prefix("error: ").unwrap_or(line);
    Err(Error::Etcd(if why.is_empty() {
        format!("the keeper of the lease on {name} did not start")
    } else {
        format!("the keeper of the lease on {name} did not start: {why}")
    }))
}

/// `lockrun etcd-keeper`: keeps an `acquire` lease alive while its owner lives.
pub(crate) fn keeper(args: &KeeperArgs) -> Result<ExitCode> {
    sys::close_inherited_descriptors();
    // A session of its own: the terminal's signals for the shell's jobs are not for it.
    let _ = rustix::process::setsid();
    let (held, state) = match adopt(args) {
        Ok(adopted) => adopted,
        Err(e) => {
            let _ = writeln!(std::io::stdout(), "error: {e}");
            return Err(e);
        }
    };
    // acquire reads this line; if it is gone (killed before it read), nobody will print
    // the id, so nobody could release the lock: give it up.
    let ready = if state.is_some() {
        READY
    } else {
        READY_WITHOUT_NOTE
    };
    if writeln!(std::io::stdout(), "{ready}")
        .and_then(|()| std::io::stdout().flush())
        .is_err()
    {
        let _ = held.release();
        remove_state(&state);
        return Ok(ExitCode::Success);
    }
    // Nothing more to say: the pipe's reader (acquire) is gone.
    if let Ok(null) = fs::File::options().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
    }
    let owner_alive = || match &args.owner_start {
        Some(token) => sys::process_is_running(args.owner, token),
        None => sys::pid_state(args.owner) != sys::PidState::Gone,
    };
    // Only an explicit RELEASED line stops it: a note that went missing (a user tidying
    // the state directory) is written again, and the lease kept.
    let released = |state: &Option<PathBuf>| {
        let Some(path) = state else { return false };
        match fs::read_to_string(path) {
            Ok(text) => text.contains("\nRELEASED"),
            Err(_) => {
                write_note(path, &note_text(args));
                false
            }
        }
    };
    // Bounded by the owner's life, a release, or the loss of the lease.
    loop {
        std::thread::sleep(OWNER_POLL);
        if released(&state) {
            // `release` revokes the lease itself.
            held.hand_over();
            remove_state(&state);
            return Ok(ExitCode::Success);
        }
        if !owner_alive() {
            let _ = held.release();
            remove_state(&state);
            return Ok(ExitCode::Success);
        }
        if let Some(line) = held.lost() {
            held.hand_over();
            if released(&state) {
                remove_state(&state);
                return Ok(ExitCode::Success);
            }
            if let Some(path) = &state {
                append(path, &format!("LOST: {line}\n"));
            }
            // Kept for the owner's `release`, which reports the loss and removes it;
            // removed here if the owner exits without one.
            while owner_alive() && state.as_ref().is_some_and(|p| p.exists()) {
                std::thread::sleep(LOST_POLL);
            }
            remove_state(&state);
            return Ok(ExitCode::Success);
        }
    }
}

/// The lease, confirmed alive with etcd and kept alive from here on, and the state file
/// written (`None` when this host has no state directory).
fn adopt(args: &KeeperArgs) -> Result<(Held, Option<PathBuf>)> {
    let settings = args
        .backend
        .etcd()
        .ok_or_else(|| Error::usage("etcd-keeper: --backend is required"))?;
    let lease = parse_lease(&args.lease)
        .ok_or_else(|| Error::usage(format!("etcd-keeper: --lease {}", args.lease)))?;
    let name = args.backend.name.clone().unwrap_or_default();
    let store = etcd::store(&settings)?;
    let sent = Instant::now();
    let ttl = match store.gateway.lease_keepalive(lease, sent + store.ttl) {
        Ok(Some(ttl)) => ttl,
        Ok(None) => {
            return Err(Error::LeaseLost(format!(
                "lost the lock on {name}: its lease ended before its keeper started"
            )));
        }
        Err(e) => return Err(etcd::gateway_error(e)),
    };
    let key = args.key.to_string_lossy().into_owned().into_bytes();
    let held = Held::adopt(store, key, lease, args.revision, (sent, ttl), name.clone())
        .map_err(|e| Error::Internal(format!("cannot start the keepalive thread: {e}")))?;
    let state = state_path(lease).filter(|path| {
        path.parent().is_some_and(|d| fs::create_dir_all(d).is_ok())
            && write_note(path, &note_text(args))
    });
    Ok((held, state))
}

/// The keeper's note: who keeps the lease for whom, on which host (a state directory
/// may be shared between hosts through a network home: PIDs mean something only on
/// their own host).
fn note_text(args: &KeeperArgs) -> String {
    let me = sys::current_pid();
    format!(
        "KEEPER: {me}\nKEEPER_START: {}\nOWNER: {}\nOWNER_START: {}\nHOST: {}\nNAME: {}\n",
        sys::process_start_token(me).unwrap_or_default(),
        args.owner,
        args.owner_start.as_deref().unwrap_or_default(),
        sys::hostname(),
        args.backend.name.as_deref().unwrap_or_default(),
    )
}

/// Writes the note whole or not at all (a temp file renamed over it), so that a reader
/// (`cleanup`, `status`) never sees half of it.
fn write_note(path: &Path, text: &str) -> bool {
    let tmp = path.with_extension(format!("tmp-{}", sys::current_pid()));
    let ok = fs::write(&tmp, text).is_ok() && fs::rename(&tmp, path).is_ok();
    if !ok {
        let _ = fs::remove_file(&tmp);
    }
    ok
}

/// Whether a note was written on this host (notes before HOST was written count as ours).
fn note_of_this_host(text: &str) -> bool {
    note_field(text, "HOST").is_none_or(|h| h == sys::hostname())
}

/// The value of the note's `KEY: value` line.
fn note_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
}

/// The keeper a note names: its PID and start token.
fn keeper_of(text: &str) -> Option<(u32, &str)> {
    let pid = note_field(text, "KEEPER")?.parse().ok()?;
    let start = note_field(text, "KEEPER_START").filter(|s| !s.is_empty())?;
    Some((pid, start))
}

/// `release ID` of an etcd id.
pub(crate) fn release(args: &ReleaseArgs, id: EtcdId) -> Result<ExitCode> {
    if args.backend.name.is_some() {
        return Err(Error::usage(
            "release takes the id acquire printed, not --name",
        ));
    }
    // The members come from the id; TLS files and the like from the options, with or
    // without --backend.
    let settings = args.backend.etcd_at(&id.url);
    let store = etcd::store(&settings)?;
    let state = state_path(id.lease);
    let lost = state
        .as_ref()
        .and_then(|p| fs::read_to_string(p).ok())
        .and_then(|text| loss(&text));
    let range = store
        .gateway
        .range(id.key.as_bytes(), b"", Instant::now() + LOOK_TIMEOUT)
        .map_err(etcd::gateway_error)?;
    let Some(kv) = range.kvs.first() else {
        remove_state(&state);
        if let Some(line) = lost {
            return Err(Error::LeaseLost(line));
        }
        return Err(Error::NoLock {
            path: PathBuf::from(&id.text),
            why: "no such lock in etcd (released already, or its lease expired)".into(),
        });
    };
    let info = Info::parse(&String::from_utf8_lossy(&kv.value));
    let owner = sys::owner::calling_shell(args.owner.unwrap_or_else(sys::parent_pid));
    let holder = etcd::lock::describe(kv);
    let here = info.hostname.as_deref() == Some(sys::hostname().as_str());
    let ours = here && super::release::owned_by(Some(&info), owner);
    if !ours {
        if !args.force {
            return Err(Error::Refused {
                what: format!("lock {}", id.text),
                holder,
                hint: format!(
                    "it does not belong to this shell (PID {owner} on {}); `lockrun release --force` releases it anyway",
                    sys::hostname()
                ),
                refusal: Refusal::NotOwner,
            });
        }
        crate::quote::say(&format!(
            "warning: releasing the lock {} of {holder}, not ours",
            id.text
        ));
    }
    // Said before the revoke, so that the keeper takes the lease's end for a release.
    // Not when releasing another's lock (--force): its keeper then notes the loss, for
    // its owner's own release to report.
    if ours {
        append_state(id.lease, "RELEASED\n");
    }
    let revoked = store.revoke(kv.lease, store.ttl.max(LOOK_TIMEOUT));
    // A live keeper sees RELEASED and removes its note itself; removing it here could
    // come before it looked, and it would take the missing note for a user's tidying.
    if ours
        && !state
            .as_ref()
            .and_then(|p| fs::read_to_string(p).ok())
            .is_some_and(|text| keeper_running(&text))
    {
        remove_state(&state);
    }
    revoked.map_err(etcd::gateway_error)?;
    Ok(ExitCode::Success)
}

/// A checked etcd lock id.
#[derive(Debug)]
pub(crate) struct EtcdId {
    /// As given.
    text: String,
    /// `etcd://HOST:PORT[,...]`
    url: String,
    key: String,
    lease: i64,
}

/// The etcd id in `id`; `None` when it is not one (a local lock id).
pub(crate) fn parse_id(id: &OsStr) -> Option<Result<EtcdId>> {
    let text = id.to_str()?;
    let scheme = ["etcd://", "etcds://"]
        .into_iter()
        .find(|s| text.starts_with(s))?;
    let bad = |why: &str| {
        Some(Err(Error::BadLockId {
            id: format!("{text:?}"),
            why: why.to_string(),
        }))
    };
    if text.chars().any(char::is_control) {
        return bad("it contains a line break or another control character");
    }
    let Some((hosts, key)) = text[scheme.len()..].split_once('/') else {
        return bad("it names no key after the etcd members (etcd://HOST:PORT/KEY)");
    };
    let url = format!("{scheme}{hosts}");
    if let Err(why) = crate::lock::etcd::config::parse_url(&url) {
        return bad(&why);
    }
    let lease = key.rsplit_once("//").and_then(|(_, hex)| parse_lease(hex));
    let Some(lease) = lease else {
        return bad("its key does not end in //<16 hex digits>, the lease of an acquire lock");
    };
    Some(Ok(EtcdId {
        text: text.to_string(),
        url,
        key: key.to_string(),
        lease,
    }))
}

fn parse_lease(hex: &str) -> Option<i64> {
    if hex.len() != 16
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u64::from_str_radix(hex, 16)
        .ok()
        .and_then(|v| i64::try_from(v).ok())
        .filter(|v| *v > 0)
}

/// `$XDG_STATE_HOME/lockrun/etcd-leases/<lease>`: what the keeper of `lease` and the
/// `release` of its lock tell each other.
fn state_path(lease: i64) -> Option<PathBuf> {
    crate::lock::key::named_lock_dir().map(|d| d.join("etcd-leases").join(format!("{lease:016x}")))
}

fn append_state(lease: i64, line: &str) {
    if let Some(path) = state_path(lease).filter(|p| p.exists()) {
        append(&path, line);
    }
}

fn append(path: &Path, line: &str) {
    if let Ok(mut f) = fs::File::options().append(true).open(path) {
        let _ = f.write_all(line.as_bytes());
    }
}

fn remove_state(state: &Option<PathBuf>) {
    if let Some(p) = state {
        let _ = fs::remove_file(p);
    }
}

/// The line that says why the lock of a keeper's state file was lost: the keeper's own
/// words, or that the keeper is gone (killed), so nothing kept its lease alive.
fn loss(text: &str) -> Option<String> {
    if text.contains("\nRELEASED") {
        return None;
    }
    // Nobody is left to tell once the owner is gone.
    if !owner_running(text) {
        return None;
    }
    if let Some(line) = note_field(text, "LOST") {
        return Some(line.to_string());
    }
    let (keeper, start) = keeper_of(text)?;
    if sys::process_is_running(keeper, start) {
        return None;
    }
    Some(format!(
        "lost the lock on {}: its keeper (PID {keeper}) is gone, so its lease expired",
        note_field(text, "NAME").unwrap_or_default()
    ))
}

/// The loss a keeper recorded on this host for a lock on `name`, if any (for `status`).
pub(crate) fn lost_here(name: &str) -> Option<String> {
    let dir = crate::lock::key::named_lock_dir()?.join("etcd-leases");
    let want = format!("\nNAME: {name}\n");
    fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let text = fs::read_to_string(entry.path()).ok()?;
        if !text.contains(&want) || !note_of_this_host(&text) {
            return None;
        }
        loss(&text)
    })
}

/// Whether the owner shell a keeper's note names still runs.
fn owner_running(text: &str) -> bool {
    let Some(owner) = note_field(text, "OWNER").and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    match note_field(text, "OWNER_START").filter(|t| !t.is_empty()) {
        Some(token) => sys::process_is_running(owner, token),
        None => sys::pid_state(owner) != sys::PidState::Gone,
    }
}

/// Removes (or with `dry_run` lists) this host's keeper notes whose keeper and owner are
/// both gone (a keeper killed, then its shell ended without a release): nothing will
/// read them again. Returns each note's path and name.
pub(crate) fn sweep_notes(dry_run: bool) -> Vec<(PathBuf, String)> {
    let Some(dir) = crate::lock::key::named_lock_dir().map(|d| d.join("etcd-leases")) else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut swept = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let is_note = entry
            .file_name()
            .to_str()
            .is_some_and(|n| parse_lease(n).is_some());
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        if !is_note || !note_of_this_host(&text) || owner_running(&text) || keeper_running(&text) {
            continue;
        }
        if dry_run || fs::remove_file(&path).is_ok() {
            let name = note_field(&text, "NAME").unwrap_or_default().to_string();
            swept.push((path, name));
        }
    }
    swept
}

fn keeper_running(text: &str) -> bool {
    keeper_of(text).is_some_and(|(pid, token)| sys::process_is_running(pid, token))
}
