//! `lockrun unlock FILE`: remove a stale lock; a live one only with --force.

use std::time::Duration;

use crate::cli::UnlockArgs;
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;
use crate::lock::LockKey;
use crate::lock::dir;
use crate::lock::inspect::{self, State};

use super::introspect;

/// Attempts before giving up on a lock that keeps changing under us.
const ATTEMPTS: usize = 20;

pub fn run(args: &UnlockArgs, quiet: bool) -> Result<i32> {
    let key = LockKey::for_path(&args.file)?;
    let lock_dir = introspect::lock_dir_of(&key, args.lock_dir.as_deref())?;
    let lock_path = key.lock_path(&lock_dir);
    let target = key.target.display().to_string();
    let judge = introspect::judge(args.stale_after);
    for _ in 0..ATTEMPTS {
        let look = inspect::look(&lock_path, &judge).map_err(|e| Error::io(&lock_path, e))?;
        let report = look.report;
        match report.state {
            State::Free => {
                if !quiet {
                    eprintln!("lockrun: {target} is not locked");
                }
                return Ok(ExitCode::Success.code());
            }
            State::Stale => {
                let Some(evidence) = look.evidence else {
                    continue;
                };
                match dir::break_dead(&lock_path, evidence, &lock_dir, &key.hex) {
                    Ok(true) => {
                        if !quiet {
                            eprintln!(
                                "lockrun: removed the stale lock on {target} of {} ({})",
                                introspect::holder(&report),
                                report.reason.as_deref().unwrap_or("holder gone")
                            );
                        }
                        return Ok(ExitCode::Success.code());
                    }
                    Ok(false) => continue,
                    Err(e) => return Err(Error::io(&lock_path, e)),
                }
            }
            State::Held => {
                let dir_held = report.info.is_some() || report.liveness == Some("creating");
                if !dir_held {
                    return Err(Error::Refused {
                        what: target,
                        holder: introspect::readers_text(&report.readers),
                        hint: "shared holds cannot be removed: they end with their processes"
                            .into(),
                        exit_code: ExitCode::TempFail.code(),
                    });
                }
                let holder = introspect::holder(&report);
                let how = format!(
                    "{}: {}",
                    report.liveness.unwrap_or("alive"),
                    report.reason.as_deref().unwrap_or("alive")
                );
                if !args.force {
                    return Err(Error::Refused {
                        what: target,
                        holder,
                        hint: format!(
                            "it is alive ({how}); `lockrun unlock --force` removes it anyway"
                        ),
                        exit_code: ExitCode::TempFail.code(),
                    });
                }
                let opened = match inspect::open_lock(&lock_path, Duration::ZERO) {
                    Ok(o) => o,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io(&lock_path, e)),
                };
                let consequence = if opened.flocked {
                    ""
                } else {
                    "; its own release will report the lock as broken"
                };
                eprintln!(
                    "lockrun: warning: removing the live lock on {target} held by {holder} ({how}){consequence}"
                );
                match opened.remove(".stale", &key.hex) {
                    Ok(true) => return Ok(ExitCode::Success.code()),
                    Ok(false) => continue,
                    Err(e) => return Err(Error::io(&lock_path, e)),
                }
            }
        }
    }
    Err(Error::Internal(format!(
        "{}: the lock kept changing; gave up after {ATTEMPTS} attempts",
        lock_path.display()
    )))
}
