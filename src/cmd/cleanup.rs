//! `lockrun cleanup`: remove stale locks and leftovers, saying what and why.

use std::path::Path;

use serde_json::{Value, json};

use crate::cli::CleanupArgs;
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;
use crate::lock::entry::{self, Entry};
use crate::lock::look::{self, State};
use crate::lock::sweep::{self, GarbageState};
use crate::lock::{dir, removal};

use super::lock_report;
use super::show::list_dir;
use crate::quote;

/// One removal (or, with --dry-run, one that would be made).
struct Removal {
    name: String,
    path: String,
    kind: &'static str,
    target: Option<String>,
    reason: String,
}

pub(crate) fn run(args: &CleanupArgs, quiet: bool) -> Result<ExitCode> {
    #[cfg(unix)]
    if let Some(settings) = super::etcd_admin::listing_backend(&args.backend, &args.dir)? {
        return super::etcd_admin::cleanup(&settings, args.dry_run, args.json, quiet);
    }
    let lock_dir = lock_report::dir_to_list(&args.dir)?;
    let judge = lock_report::judge(args.dir.stale_after);
    let mut removed = Vec::new();
    // Entries that could not be judged (planted by any user of a shared lock
    // directory, or half-made): each is one row and skipped; none stops the others.
    let mut skipped: Vec<(String, String, String)> = Vec::new();
    for name in list_dir(&lock_dir)? {
        let path = lock_dir.join(&name);
        let outcome = match entry::classify(&name) {
            Entry::Lock { hex } => sweep_lock(&lock_dir, &hex, &judge, args.dry_run),
            Entry::Garbage { kind, hex } => {
                match sweep::sweep_garbage(&path, kind, &hex, args.dry_run) {
                    Ok(GarbageState::Removed(why) | GarbageState::Removable(why)) => {
                        Ok(Some(Removal {
                            name: String::new(),
                            path: String::new(),
                            kind: "garbage",
                            target: None,
                            reason: why,
                        }))
                    }
                    Ok(_) => Ok(None),
                    Err(e) => Err(Error::io(&path, e)),
                }
            }
            // Reader gates are kept (tiny; removing one needs its key's lock, which
            // would make a concurrent `-n` taker fail); other entries are not ours.
            Entry::Gate { .. } | Entry::Other => Ok(None),
        };
        match outcome {
            Ok(Some(mut r)) => {
                r.name = name.to_string_lossy().into_owned();
                r.path = path.to_string_lossy().into_owned();
                removed.push(r);
            }
            Ok(None) => {}
            Err(e) => skipped.push((
                name.to_string_lossy().into_owned(),
                path.to_string_lossy().into_owned(),
                format!("not a lockrun entry: {e}; never touched"),
            )),
        }
    }
    if args.json {
        let items: Vec<Value> = removed
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "path": r.path,
                    "kind": r.kind,
                    "target": r.target,
                    "reason": r.reason,
                })
            })
            .collect();
        lock_report::write_json(&json!({
            "lock_dir": lock_dir.to_string_lossy(),
            "dry_run": args.dry_run,
            "count": removed.len(),
            "removed": items,
            "skipped": skipped
                .iter()
                .map(|(name, path, reason)| json!({"name": name, "path": path, "reason": reason}))
                .collect::<Vec<Value>>(),
        }))?;
    } else {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let mut out = String::new();
        for r in &removed {
            let what = r.target.as_deref().unwrap_or(&r.name);
            out.push_str(&format!(
                "{verb} {}: {}\n",
                quote::quote(what),
                quote::quote(&r.reason)
            ));
        }
        for (name, _, reason) in &skipped {
            out.push_str(&format!(
                "skipped {}: {}\n",
                quote::quote(name),
                quote::quote(reason)
            ));
        }
        if !quiet || !removed.is_empty() {
            out.push_str(&format!(
                "{verb} {} {} in {}\n",
                removed.len(),
                if removed.len() == 1 {
                    "entry"
                } else {
                    "entries"
                },
                lock_dir.display()
            ));
        }
        lock_report::write_stdout(&out)?;
    }
    Ok(ExitCode::Success)
}

/// Breaks the lock `<hex>.lock` if it is stale, as an acquirer would.
fn sweep_lock(
    lock_dir: &Path,
    hex: &str,
    judge: &dir::Judge,
    dry_run: bool,
) -> Result<Option<Removal>> {
    let lock_path = lock_dir.join(format!("{hex}.lock"));
    let look = match look::look(&lock_path, judge) {
        Ok(look) => look,
        // A symlink or a file in a lock's place: not ours to remove.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => return Ok(None),
        Err(e) => return Err(Error::io(&lock_path, e)),
    };
    let (State::Stale, Some(evidence)) = (look.report.state, look.evidence) else {
        return Ok(None);
    };
    let report = look.report;
    let holder = lock_report::holder(&report);
    let removal = Removal {
        name: String::new(),
        path: String::new(),
        kind: "lock",
        target: report.info.as_ref().and_then(|i| i.target.clone()),
        reason: format!(
            "stale lock of {holder}: {}",
            report.reason.as_deref().unwrap_or("holder gone")
        ),
    };
    if dry_run {
        return Ok(Some(removal));
    }
    match removal::break_dead(&lock_path, evidence, lock_dir, hex) {
        Ok(true) => Ok(Some(removal)),
        // Broken or re-created by someone else meanwhile: not ours to count.
        Ok(false) => Ok(None),
        Err(e) => Err(Error::io(&lock_path, e)),
    }
}
