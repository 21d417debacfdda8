//! What status, show, cleanup and unlock share: choosing the lock directory without
//! creating it, and writing a lock report as text or JSON.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::cli::DirArgs;
use crate::error::{Error, Result};
use crate::lock::LockKey;
use crate::lock::dir::Judge;
use crate::lock::format_age;
use crate::lock::look::{Liveness, LockReport, State};
use crate::lock::readers::Readers;

/// FILE's lock directory (--lock-dir / LOCKRUN_DIR as `chosen`, else `.locks` beside
/// it), made absolute but not created: looking must not change anything.
pub(crate) fn chosen_lock_dir(key: &LockKey, chosen: Option<&Path>) -> Result<PathBuf> {
    match chosen {
        Some(dir) => absolute(dir),
        None => absolute(&key.default_lock_dir()),
    }
}

/// The directory `show` and `cleanup` look at: --lock-dir DIR, else LOCKRUN_DIR (both
/// in `lock_dir`), else FILE's lock directory, else `.locks` in the current directory.
pub(crate) fn dir_to_list(args: &DirArgs) -> Result<PathBuf> {
    if let Some(dir) = &args.dir.lock_dir {
        return absolute(dir);
    }
    if let Some(file) = &args.file {
        return absolute(&LockKey::for_path(file)?.default_lock_dir());
    }
    absolute(Path::new(".locks"))
}

/// `dir` made absolute; a lock directory that exists but is not a directory is an
/// error naming it.
fn absolute(dir: &Path) -> Result<PathBuf> {
    let dir = crate::lock::key::absolute(dir)?;
    match std::fs::metadata(&dir) {
        Ok(meta) if !meta.is_dir() => Err(Error::LockDirNotDir { path: dir }),
        _ => Ok(dir),
    }
}

pub(crate) fn judge(stale_after: Option<std::time::Duration>) -> Judge {
    Judge { stale_after }
}

/// "mcp-server (PID 12345 on myhost, 'node server.js', held 2.1s)", or what is known.
pub(crate) fn holder(report: &LockReport) -> String {
    match &report.info {
        Some(info) if info.pid.is_some() => info.describe(report.since),
        _ => {
            let age = report
                .since
                .and_then(|t| t.elapsed().ok())
                .map(|a| format!(" ({} old)", format_age(a)))
                .unwrap_or_default();
            format!("a lock directory without holder information{age}")
        }
    }
}

pub(crate) fn readers_text(readers: &Readers) -> String {
    if readers.pids.is_empty() {
        return "shared holders (the OS cannot tell which)".into();
    }
    let pids: Vec<String> = readers.pids.iter().map(|p| format!("PID {p}")).collect();
    pids.join(", ")
}

/// The fields of `status --json` (and of each lock in `show --json`).
pub(crate) fn report_json(report: &LockReport, target: Option<&str>) -> Map<String, Value> {
    let info = report.info.as_ref();
    let held_secs = report
        .since
        .and_then(|t| t.elapsed().ok())
        .map(|a| (a.as_secs_f64() * 1000.0).round() / 1000.0);
    let target = target.or_else(|| info.and_then(|i| i.target.as_deref()));
    let value = json!({
        "target": target,
        "lock": report.lock_path.to_string_lossy(),
        "state": report.state.as_str(),
        "liveness": report.liveness.map(|l| l.as_str()),
        "reason": report.reason,
        "pid": info.and_then(|i| i.pid),
        "host": info.and_then(|i| i.hostname.clone()),
        "label": info.and_then(|i| i.label.clone()),
        "command": info.and_then(|i| i.command.clone()),
        "mode": info.and_then(|i| i.mode).map(|m| m.as_str()),
        "tool": info.and_then(|i| i.tool.clone()),
        "acquired": info.and_then(|i| i.acquired.clone()),
        "held_secs": if report.state == State::Free { None } else { held_secs },
        "readers": report.readers.pids,
        "readers_unknown": report.readers.unknown,
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `status`'s text: one headline, then the facts, indented.
pub(crate) fn status_text(report: &LockReport, target: &str) -> String {
    let mut out = String::new();
    match report.state {
        State::Free => {
            push_line(&mut out, &format!("{target}: free"));
            return out;
        }
        State::Held if report.shared_only() => {
            push_line(
                &mut out,
                &format!(
                    "{target}: held (shared) by {}",
                    readers_text(&report.readers)
                ),
            );
        }
        State::Held => push_line(&mut out, &format!("{target}: held by {}", holder(report))),
        State::Stale => push_line(
            &mut out,
            &format!(
                "{target}: stale: {}",
                report.reason.as_deref().unwrap_or("holder gone")
            ),
        ),
    }
    let info = report.info.as_ref();
    if report.state == State::Stale
        || (report.liveness == Some(Liveness::Readers) && report.dir_held())
    {
        push_line(&mut out, &format!("  holder:   {}", holder(report)));
    }
    if let Some(mode) = info.and_then(|i| i.mode) {
        push_line(&mut out, &format!("  mode:     {}", mode.as_str()));
    }
    if let Some(acquired) = info.and_then(|i| i.acquired.as_deref()) {
        push_line(&mut out, &format!("  since:    {acquired}"));
    }
    if report.state == State::Held
        && let (Some(how), Some(why)) = (report.liveness, report.reason.as_deref())
    {
        push_line(&mut out, &format!("  liveness: {}: {why}", how.as_str()));
    }
    if report.readers.any() {
        push_line(
            &mut out,
            &format!("  readers:  {}", readers_text(&report.readers)),
        );
    }
    push_line(
        &mut out,
        &format!("  lock:     {}", report.lock_path.display()),
    );
    out
}

/// One line of `status`, quoted (a label or path from the lock directory may hold a
/// line break or an escape code).
fn push_line(out: &mut String, line: &str) {
    out.push_str(&crate::quote::quote(line));
    out.push('\n');
}

pub(crate) fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}

pub(crate) fn write_json(value: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Internal(format!("rendering JSON: {e}")))?;
    text.push('\n');
    write_stdout(&text)
}
