//! `status` and `unlock` of a lock kept in etcd (`--backend etcd://...`). An etcd lock
//! is never stale: its lease ends with its holder. So `status` is free (0) or held (1),
//! and `unlock --force` revokes the holders' leases (their commands are killed).

use serde_json::{Map, Value, json};

use crate::error::{Error, Refusal, Result};
use crate::exit_code::ExitCode;
use crate::lock::etcd::{self, LOOK_TIMEOUT, gateway::Kv, lock::Admitted};
use crate::lock::info::Info;
use crate::lock::{EtcdSettings, LockKey};

use super::lock_report;
use crate::quote;

/// Who holds and who waits, oldest first.
struct Holders {
    name: String,
    url: String,
    admitted: Vec<Kv>,
    waiting: usize,
}

fn look(key: &LockKey, settings: &EtcdSettings) -> Result<Holders> {
    let store = etcd::store(settings)?;
    let name = key.target.to_string_lossy().into_owned();
    let Admitted { admitted, waiting } = store
        .admitted(&name, LOOK_TIMEOUT)
        .map_err(etcd::gateway_error)?;
    Ok(Holders {
        name,
        url: settings.url.clone(),
        admitted,
        waiting,
    })
}

fn info(kv: &Kv) -> Info {
    Info::parse(&String::from_utf8_lossy(&kv.value))
}

fn held_secs(info: &Info) -> Option<f64> {
    let since = humantime::parse_rfc3339(info.acquired.as_deref()?).ok()?;
    let age = since.elapsed().ok()?;
    Some((age.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// The fields of `status --json` for a lock in etcd.
fn status_json(h: &Holders) -> Map<String, Value> {
    let first = h.admitted.first();
    let i = first.map(info);
    let i = i.as_ref();
    let readers: Vec<u32> = if i.and_then(|i| i.mode) == Some(crate::lock::info::Mode::Shared) {
        h.admitted.iter().filter_map(|kv| info(kv).pid).collect()
    } else {
        Vec::new()
    };
    let value = json!({
        "target": h.name,
        "lock": first.map_or_else(|| format!("{} (etcd)", h.url), |kv| {
            format!("{} key {}", h.url, String::from_utf8_lossy(&kv.key))
        }),
        "state": if first.is_some() { "held" } else { "free" },
        "liveness": first.map(|_| "lease"),
        "reason": first.map(|kv| format!("etcd lease {:016x}, kept alive by its holder", kv.lease)),
        "pid": i.and_then(|i| i.pid),
        "host": i.and_then(|i| i.hostname.clone()),
        "label": i.and_then(|i| i.label.clone()),
        "command": i.and_then(|i| i.command.clone()),
        "mode": i.and_then(|i| i.mode).map(|m| m.as_str()),
        "tool": i.and_then(|i| i.tool.clone()),
        "acquired": i.and_then(|i| i.acquired.clone()),
        "held_secs": i.and_then(held_secs),
        "readers": readers,
        "readers_unknown": false,
        "waiting": h.waiting,
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

pub(crate) fn status(key: &LockKey, settings: &EtcdSettings, as_json: bool) -> Result<ExitCode> {
    let h = look(key, settings)?;
    let first = h.admitted.first();
    if as_json {
        let value = Value::Object(status_json(&h));
        lock_report::write_json(&value)?;
    } else {
        let mut out = String::new();
        match first {
            None => match super::etcd_acquire::lost_here(&h.name) {
                // An `acquire` lock whose keeper lost the lease: its shell may still be
                // working, unprotected, until its `release` says so.
                Some(line) => out.push_str(&format!("{}: free ({line})\n", h.name)),
                None => out.push_str(&format!("{}: free\n", h.name)),
            },
            Some(kv) => {
                let holders: Vec<String> = h.admitted.iter().map(etcd::lock::describe).collect();
                out.push_str(&format!("{}: held by {}\n", h.name, holders.join(", ")));
                let i = info(kv);
                if let Some(mode) = i.mode {
                    out.push_str(&format!("  mode:     {}\n", mode.as_str()));
                }
                if let Some(acquired) = &i.acquired {
                    out.push_str(&format!("  since:    {acquired}\n"));
                }
                out.push_str(&format!(
                    "  liveness: lease: etcd lease {:016x}, kept alive by its holder\n",
                    kv.lease
                ));
                if h.waiting > 0 {
                    out.push_str(&format!("  waiting:  {}\n", h.waiting));
                }
                out.push_str(&format!(
                    "  lock:     {} key {}\n",
                    h.url,
                    String::from_utf8_lossy(&kv.key)
                ));
            }
        }
        lock_report::write_stdout(&out)?;
    }
    Ok(if first.is_some() {
        ExitCode::Held
    } else {
        ExitCode::Success
    })
}

pub(crate) fn unlock(
    key: &LockKey,
    settings: &EtcdSettings,
    force: bool,
    quiet: bool,
) -> Result<ExitCode> {
    let h = look(key, settings)?;
    if h.admitted.is_empty() {
        if !quiet {
            eprintln!("lockrun: {} is not locked", h.name);
        }
        return Ok(ExitCode::Success);
    }
    let holders: Vec<String> = h.admitted.iter().map(etcd::lock::describe).collect();
    if !force {
        return Err(Error::Refused {
            what: h.name,
            holder: holders.join(", "),
            hint: "an etcd lock is never stale (its lease ends with its holder); --force revokes the lease and its command is killed".into(),
            refusal: Refusal::Alive,
        });
    }
    let store = etcd::store(settings)?;
    for (kv, who) in h.admitted.iter().zip(&holders) {
        eprintln!(
            "lockrun: warning: revoking the lease of {who} on {}: it loses the lock (`with` kills its command; an `acquire` shell is told by its release)",
            h.name
        );
        store
            .revoke(kv.lease, LOOK_TIMEOUT)
            .map_err(etcd::gateway_error)?;
    }
    Ok(ExitCode::Success)
}

/// `show` with an etcd backend: every lock under the prefix, one line each (JSON: the
/// fields of `status --json`, plus name, path (the key) and kind).
pub(crate) fn show(settings: &EtcdSettings, as_json: bool, quiet: bool) -> Result<ExitCode> {
    let store = etcd::store(settings)?;
    let etcd::lock::Listing { locks, foreign } =
        store.all_locks(LOOK_TIMEOUT).map_err(etcd::gateway_error)?;
    let mut items = Vec::new();
    let mut out = String::new();
    for (name, Admitted { admitted, waiting }) in locks {
        let h = Holders {
            name,
            url: settings.url.clone(),
            admitted,
            waiting,
        };
        let Some(first) = h.admitted.first() else {
            continue;
        };
        let key = String::from_utf8_lossy(&first.key).into_owned();
        let holders: Vec<String> = h.admitted.iter().map(etcd::lock::describe).collect();
        let mut detail = holders.join(", ");
        if info(first).mode == Some(crate::lock::info::Mode::Shared) {
            detail = format!("shared by {detail}");
        }
        if h.waiting > 0 {
            detail.push_str(&format!("; {} waiting", h.waiting));
        }
        out.push_str(&format!(
            "{:<8} {}  {}\n",
            "held",
            quote::quote(&h.name),
            quote::quote(&detail)
        ));
        let mut row = status_json(&h);
        row.insert("name".into(), Value::String(h.name.clone()));
        row.insert("path".into(), Value::String(key));
        row.insert("kind".into(), Value::String("lock".into()));
        items.push(Value::Object(row));
    }
    for kv in &foreign {
        let key = String::from_utf8_lossy(&kv.key).into_owned();
        let why = foreign_reason(kv);
        out.push_str(&format!(
            "{:<8} {}  {}\n",
            "other",
            quote::quote(&key),
            quote::quote(&why)
        ));
        items.push(json!({
            "name": key, "path": key, "kind": "other", "state": "other", "target": null,
            "reason": why,
        }));
    }
    if as_json {
        lock_report::write_json(&Value::Array(items))?;
    } else if items.is_empty() {
        if !quiet {
            quote::say(&format!(
                "no locks in etcd at {} under {}",
                settings.url, store.prefix
            ));
        }
    } else {
        lock_report::write_stdout(&out)?;
    }
    Ok(ExitCode::Success)
}

/// Why a key under the prefix is not a lockrun lock.
fn foreign_reason(kv: &Kv) -> String {
    if kv.lease == 0 {
        "not a lockrun entry: a key without a lease (never touched; delete it with etcdctl if it is in the way)".into()
    } else {
        "not a lockrun entry: not <name>//<its lease>".into()
    }
}

/// `cleanup` with an etcd backend. A lock there cannot go stale: its key goes with its
/// holder's lease. So nothing is removed; keys under the prefix that lockrun did not
/// write are listed as skipped (lockrun never deletes what it did not make).
pub(crate) fn cleanup(
    settings: &EtcdSettings,
    dry_run: bool,
    as_json: bool,
    quiet: bool,
) -> Result<ExitCode> {
    let store = etcd::store(settings)?;
    let etcd::lock::Listing { foreign, .. } =
        store.all_locks(LOOK_TIMEOUT).map_err(etcd::gateway_error)?;
    let skipped: Vec<(String, String)> = foreign
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(&kv.key).into_owned(),
                foreign_reason(kv),
            )
        })
        .collect();
    let notes = super::etcd_acquire::sweep_notes(dry_run);
    let place = format!("etcd at {} under {}", settings.url, store.prefix);
    let note_reason = |name: &str| {
        format!("the note of a lost acquire lock on {name}: its keeper and its owner are gone")
    };
    if as_json {
        lock_report::write_json(&json!({
            "lock_dir": null,
            "backend": settings.url,
            "prefix": store.prefix,
            "dry_run": dry_run,
            "count": notes.len(),
            "removed": notes
                .iter()
                .map(|(path, name)| json!({
                    "name": path.file_name().map(|n| n.to_string_lossy().into_owned()),
                    "path": path.to_string_lossy(),
                    "kind": "note",
                    "target": name,
                    "reason": note_reason(name),
                }))
                .collect::<Vec<Value>>(),
            "skipped": skipped
                .iter()
                .map(|(key, reason)| json!({"name": key, "path": key, "reason": reason}))
                .collect::<Vec<Value>>(),
        }))?;
        return Ok(ExitCode::Success);
    }
    let mut out = String::new();
    let verb = if dry_run { "would remove" } else { "removed" };
    for (path, name) in &notes {
        out.push_str(&format!(
            "{verb} {}: {}\n",
            quote::quote(&path.to_string_lossy()),
            quote::quote(&note_reason(name))
        ));
    }
    for (key, reason) in &skipped {
        out.push_str(&format!(
            "skipped {}: {}\n",
            quote::quote(key),
            quote::quote(reason)
        ));
    }
    if !quiet {
        out.push_str(&format!(
            "nothing to clean in {place}: a lock there ends with its holder's lease, so none is ever stale\n"
        ));
    }
    lock_report::write_stdout(&out)?;
    Ok(ExitCode::Success)
}

/// The etcd backend `show` or `cleanup` was asked to list, if any; options that name a
/// lock directory or one lock make no sense with it.
pub(crate) fn listing_backend(
    backend: &crate::cli::BackendArgs,
    dir: &crate::cli::DirArgs,
) -> Result<Option<EtcdSettings>> {
    let Some(settings) = backend.etcd() else {
        return Ok(None);
    };
    // --lock-dir is not refused: LOCKRUN_DIR may be set for the local locks as well.
    let refused = [
        (
            backend.name.is_some(),
            "--name: it lists every lock (`lockrun status --name NAME` looks at one)",
        ),
        (
            dir.file.is_some(),
            "a FILE: it lists every lock under the prefix",
        ),
        (
            dir.stale_after.is_some(),
            "--stale-after: a lease holds an etcd lock",
        ),
    ];
    if let Some((_, what)) = refused.iter().find(|(given, _)| *given) {
        return Err(Error::usage(format!(
            "with an etcd backend ({}), show and cleanup take no {what}",
            settings.url
        )));
    }
    Ok(Some(settings))
}
