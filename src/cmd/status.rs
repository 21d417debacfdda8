//! `lockrun status FILE`: free (0), held (1) or stale (3), with the holder and the proof.

use serde_json::Value;

use crate::cli::StatusArgs;
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::lock::look::{self, State};

use super::lock_report;

pub(crate) fn run(args: &StatusArgs) -> Result<ExitCode> {
    let key = super::lock_key(args.file.as_deref(), args.look.backend.name.as_deref())?;
    #[cfg(unix)]
    if let Some(settings) = args.look.backend.etcd() {
        return super::etcd_admin::status(&key, &settings, args.json);
    }
    let lock_dir = lock_report::chosen_lock_dir(&key, args.dir.lock_dir.as_deref())?;
    let lock_path = key.lock_path(&lock_dir);
    let look = look::look(&lock_path, &lock_report::judge(args.look.stale_after))
        .map_err(|e| crate::lock::lock_error(&lock_path, e))?;
    // Let go of a dead lock's flock at once: status only looks.
    drop(look.evidence);
    let report = look.report;
    let target = key.target.to_string_lossy();
    if args.json {
        lock_report::write_json(&Value::Object(lock_report::report_json(
            &report,
            Some(&target),
        )))?;
    } else {
        lock_report::write_stdout(&lock_report::status_text(&report, &target))?;
    }
    Ok(match report.state {
        State::Free => ExitCode::Success,
        State::Held => ExitCode::Held,
        State::Stale => ExitCode::Stale,
    })
}
