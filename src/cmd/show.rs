//! `lockrun show`: every lock and leftover in a lock directory, one line each.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::cli::ShowArgs;
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;
use crate::lock::dir::Judge;
use crate::lock::entry::{self, Entry};
use crate::lock::look::{self, State};
use crate::lock::sweep::{self, GarbageState};

use super::lock_report;
use crate::quote;

/// One line of `show`.
struct Row {
    name: String,
    path: PathBuf,
    kind: &'static str,
    state: &'static str,
    /// The target when known, else the entry name.
    what: String,
    detail: String,
    json: Map<String, Value>,
}

pub(crate) fn run(args: &ShowArgs, quiet: bool) -> Result<ExitCode> {
    #[cfg(unix)]
    if let Some(settings) = super::etcd_admin::listing_backend(&args.backend, &args.dir)? {
        return super::etcd_admin::show(&settings, args.json, quiet);
    }
    let lock_dir = lock_report::dir_to_list(&args.dir)?;
    let judge = lock_report::judge(args.dir.stale_after);
    let names = list_dir(&lock_dir)?;
    let mut rows = Vec::new();
    for name in &names {
        // One entry that cannot be read (planted by any user of a shared lock
        // directory) is one row; it never hides the others.
        match row_for(&lock_dir, name, &names, &judge) {
            Ok(Some(row)) => rows.push(row),
            Ok(None) => {}
            Err(e) => rows.push(other_row(&lock_dir, name, &e.to_string())),
        }
    }
    if args.json {
        let items: Vec<Value> = rows.into_iter().map(|r| Value::Object(r.json)).collect();
        lock_report::write_json(&Value::Array(items))?;
    } else if rows.is_empty() {
        if !quiet {
            crate::quote::say(&format!("no locks in {}", lock_dir.display()));
        }
    } else {
        let mut out = String::new();
        for r in rows {
            out.push_str(&format!(
                "{:<8} {}  {}\n",
                r.state,
                quote::quote(&r.what),
                quote::quote(&r.detail)
            ));
        }
        lock_report::write_stdout(&out)?;
    }
    Ok(ExitCode::Success)
}

/// The entry names of `lock_dir`, sorted; none when it does not exist.
pub(crate) fn list_dir(lock_dir: &Path) -> Result<Vec<OsString>> {
    let rd = match fs::read_dir(lock_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(lock_dir, e)),
    };
    let mut names = Vec::new();
    for entry in rd {
        names.push(entry.map_err(|e| Error::io(lock_dir, e))?.file_name());
    }
    names.sort();
    Ok(names)
}

/// The row of an entry that is not (or not readably) lockrun's: never touched.
fn other_row(lock_dir: &Path, name: &OsString, why: &str) -> Row {
    let path = lock_dir.join(name);
    let name_text = quote::quote_os(name).into_owned();
    let detail = format!("not a lockrun entry: {why}; never touched");
    let mut json = Map::new();
    json.insert("name".into(), json!(name.to_string_lossy()));
    json.insert("path".into(), json!(path.to_string_lossy()));
    json.insert("kind".into(), json!("other"));
    json.insert("state".into(), json!("other"));
    json.insert("target".into(), Value::Null);
    json.insert("reason".into(), json!(detail));
    Row {
        name: name_text.clone(),
        path,
        kind: "other",
        state: "other",
        what: name_text,
        detail,
        json,
    }
}

fn row_for(
    lock_dir: &Path,
    name: &OsString,
    names: &[OsString],
    judge: &Judge,
) -> Result<Option<Row>> {
    let path = lock_dir.join(name);
    let name_text = name.to_string_lossy().into_owned();
    let base = |kind: &'static str, state: &'static str, detail: String| {
        let mut json = Map::new();
        json.insert("name".into(), json!(name_text));
        json.insert("path".into(), json!(path.to_string_lossy()));
        json.insert("kind".into(), json!(kind));
        json.insert("state".into(), json!(state));
        json.insert("target".into(), Value::Null);
        json.insert("reason".into(), json!(detail));
        Row {
            name: name_text.clone(),
            path: path.clone(),
            kind,
            state,
            what: name_text.clone(),
            detail,
            json,
        }
    };
    match entry::classify(name) {
        Entry::Lock { hex } => lock_row(lock_dir, &hex, &name_text, judge),
        Entry::Gate { hex } => {
            let lock_name = OsString::from(format!("{hex}.lock"));
            if names.contains(&lock_name) {
                // Its readers are shown on the lock's line.
                return Ok(None);
            }
            match lock_row(lock_dir, &hex, &name_text, judge)? {
                Some(mut row) => {
                    row.kind = "gate";
                    row.name = name_text.clone();
                    row.path = path.clone();
                    row.json.insert("name".into(), json!(row.name));
                    row.json
                        .insert("path".into(), json!(path.to_string_lossy()));
                    row.json.insert("kind".into(), json!("gate"));
                    Ok(Some(row))
                }
                None => Ok(Some(base(
                    "gate",
                    "idle",
                    "reader gate of shared locks; no readers".into(),
                ))),
            }
        }
        Entry::Garbage { kind, hex } => {
            let state =
                sweep::sweep_garbage(&path, kind, &hex, true).map_err(|e| Error::io(&path, e))?;
            Ok(match state {
                GarbageState::Removable(why) | GarbageState::Removed(why) => {
                    Some(base("garbage", "garbage", why))
                }
                GarbageState::InUse => Some(base(
                    "garbage",
                    "busy",
                    format!("{}: a process still holds its info flock", kind.origin()),
                )),
                GarbageState::Young(age) => Some(base(
                    "garbage",
                    "busy",
                    format!(
                        "{}: changed {} ago, a process may still work on it",
                        kind.origin(),
                        crate::lock::format_age(age)
                    ),
                )),
                GarbageState::Gone => None,
                GarbageState::NotADir => Some(other_row(lock_dir, name, "not a directory")),
            })
        }
        Entry::Other => Ok(Some(other_row(
            lock_dir,
            name,
            "its name is not one lockrun gives",
        ))),
    }
}

fn lock_row(lock_dir: &Path, hex: &str, name: &str, judge: &Judge) -> Result<Option<Row>> {
    let lock_path = lock_dir.join(format!("{hex}.lock"));
    let look = match look::look(&lock_path, judge) {
        Ok(look) => look,
        Err(e) => {
            // A symlink or a file where a lock should be: say so, touch nothing.
            let detail = format!("not a lockrun entry: {e}; never touched");
            let mut json = Map::new();
            json.insert("name".into(), json!(name));
            json.insert("path".into(), json!(lock_path.to_string_lossy()));
            json.insert("kind".into(), json!("other"));
            json.insert("state".into(), json!("other"));
            json.insert("target".into(), Value::Null);
            json.insert("reason".into(), json!(detail));
            return Ok(Some(Row {
                name: name.to_string(),
                path: lock_path,
                kind: "other",
                state: "other",
                what: name.to_string(),
                detail,
                json,
            }));
        }
    };
    drop(look.evidence);
    let report = look.report;
    if report.state == State::Free {
        return Ok(None);
    }
    let mut json = Map::new();
    json.insert("name".into(), json!(name));
    json.insert("path".into(), json!(lock_path.to_string_lossy()));
    json.insert("kind".into(), json!("lock"));
    json.extend(lock_report::report_json(&report, None));
    let what = report
        .info
        .as_ref()
        .and_then(|i| i.target.clone())
        .unwrap_or_else(|| name.to_string());
    let mut detail = match report.state {
        State::Held if report.shared_only() => {
            format!("shared by {}", lock_report::readers_text(&report.readers))
        }
        State::Held => format!(
            "{} [{}]",
            lock_report::holder(&report),
            report.liveness.map_or("?", |l| l.as_str())
        ),
        _ => format!(
            "{}: {}",
            lock_report::holder(&report),
            report.reason.as_deref().unwrap_or("holder gone")
        ),
    };
    if report.dir_held() && report.readers.any() {
        detail.push_str(&format!(
            "; readers: {}",
            lock_report::readers_text(&report.readers)
        ));
    }
    Ok(Some(Row {
        name: name.to_string(),
        path: lock_path,
        kind: "lock",
        state: report.state.as_str(),
        what,
        detail,
        json,
    }))
}
