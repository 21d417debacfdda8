//! `lockrun unlock FILE`: remove a stale lock; a live one only with --force.

use std::time::Duration;

use crate::cli::UnlockArgs;
use crate::error::{Error, Refusal, Result};
use crate::exit_code::ExitCode;
use crate::lock::look::{self, State};
use crate::lock::removal::{self, Grave};

use super::lock_report;

/// Attempts before giving up on a lock that keeps changing under us.
const ATTEMPTS: usize = 20;

pub(crate) fn run(args: &UnlockArgs, quiet: bool) -> Result<ExitCode> {
    let key = super::lock_key(args.file.as_deref(), args.look.backend.name.as_deref())?;
    #[cfg(unix)]
    if let Some(settings) = args.look.backend.etcd() {
        return super::etcd_admin::unlock(&key, &settings, args.force, quiet);
    }
    let lock_dir = lock_report::chosen_lock_dir(&key, args.dir.lock_dir.as_deref())?;
    let lock_path = key.lock_path(&lock_dir);
    let target = key.target.display().to_string();
    let judge = lock_report::judge(args.look.stale_after);
    for _ in 0..ATTEMPTS {
        let look =
            look::look(&lock_path, &judge).map_err(|e| crate::lock::lock_error(&lock_path, e))?;
        let report = look.report;
        match report.state {
            State::Free => {
                if !quiet {
                    crate::quote::say(&format!("{target} is not locked"));
                }
                return Ok(ExitCode::Success);
            }
            State::Stale => {
                let Some(evidence) = look.evidence else {
                    continue;
                };
                match removal::break_dead(&lock_path, evidence, &lock_dir, &key.hex) {
                    Ok(true) => {
                        if !quiet {
                            crate::quote::say(&format!(
                                "removed the stale lock on {target} of {} ({})",
                                lock_report::holder(&report),
                                report.reason.as_deref().unwrap_or("holder gone")
                            ));
                        }
                        return Ok(ExitCode::Success);
                    }
                    Ok(false) => continue,
                    Err(e) => return Err(crate::lock::lock_error(&lock_path, e)),
                }
            }
            State::Held => {
                if !report.dir_held() {
                    return Err(Error::Refused {
                        what: target,
                        holder: lock_report::readers_text(&report.readers),
                        hint: "shared holds cannot be removed: they end with their processes"
                            .into(),
                        refusal: Refusal::Alive,
                    });
                }
                let holder = lock_report::holder(&report);
                let how = format!(
                    "{}: {}",
                    report.liveness.map_or("alive", |l| l.as_str()),
                    report.reason.as_deref().unwrap_or("alive")
                );
                if !args.force {
                    return Err(Error::Refused {
                        what: target,
                        holder,
                        hint: format!(
                            "it is alive ({how}); `lockrun unlock --force` removes it anyway"
                        ),
                        refusal: Refusal::Alive,
                    });
                }
                let opened = match removal::open_lock(&lock_path, Duration::ZERO) {
                    Ok(o) => o,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(crate::lock::lock_error(&lock_path, e)),
                };
                let consequence = if opened.flocked {
                    ""
                } else {
                    "; its own release will report the lock as broken"
                };
                crate::quote::say(&format!(
                    "warning: removing the live lock on {target} held by {holder} ({how}){consequence}"
                ));
                match opened.remove(Grave::Stale, &key.hex) {
                    Ok(true) => return Ok(ExitCode::Success),
                    Ok(false) => continue,
                    Err(e) => return Err(crate::lock::lock_error(&lock_path, e)),
                }
            }
        }
    }
    Err(Error::Internal(format!(
        "{}: the lock kept changing; gave up after {ATTEMPTS} attempts",
        lock_path.display()
    )))
}
