//! `status` and `unlock` of a lock kept in etcd (`--backend etcd://...`). An etcd lock
//! is never stale: its lease ends with its holder. So `status` is free (0) or held (1),
//! and `unlock --force` revokes the holders' leases (their commands are killed).

use serde_json::json;

use crate::error::{Error, Refusal, Result};
use crate::exit_code::ExitCode;
use crate::lock::etcd::{self, LOOK_TIMEOUT, gateway::Kv, lock::Admitted};
use crate::lock::info::Info;
use crate::lock::{EtcdSettings, LockKey};

use super::lock_report;

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

pub(crate) fn status(key: &LockKey, settings: &EtcdSettings, as_json: bool) -> Result<ExitCode> {
    let h = look(key, settings)?;
    let first = h.admitted.first();
    if as_json {
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
            "lockrun: warning: revoking the lease of {who} on {}: its command will be killed",
            h.name
        );
        store
            .revoke(kv.lease, LOOK_TIMEOUT)
            .map_err(etcd::gateway_error)?;
    }
    Ok(ExitCode::Success)
}
