//! `lockrun release ID`: release a lock taken by `lockrun acquire`.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::ReleaseArgs;
use crate::error::{Error, Refusal, Result};
use crate::exit_code::ExitCode;
use crate::lock::info::{Info, Liveness};
use crate::lock::lock_id;
use crate::lock::removal::{self, Grave};
use crate::sys;

/// How long to wait for a prober that holds the lock's `info` flock for an instant.
const FLOCK_PATIENCE: Duration = Duration::from_millis(500);

pub(crate) fn run(args: &ReleaseArgs, _quiet: bool) -> Result<ExitCode> {
    #[cfg(unix)]
    if let Some(id) = super::etcd_acquire::parse_id(&args.id) {
        return super::etcd_acquire::release(args, id?);
    }
    let shown = format!("{:?}", args.id);
    let refuse = |e: io::Error| match e.kind() {
        io::ErrorKind::InvalidInput => Error::BadLockId {
            id: shown.clone(),
            why: e.to_string(),
        },
        io::ErrorKind::NotFound => Error::NoLock {
            path: PathBuf::from(&args.id),
            why: e.to_string(),
        },
        _ => Error::io(PathBuf::from(&args.id), e),
    };
    let id = lock_id::parse_lock_id(&args.id).map_err(refuse)?;
    let opened =
        removal::open_lock(&id.lock_path, FLOCK_PATIENCE).map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::EISDIR) => Error::BadLockId {
                id: shown.clone(),
                why: "it is not a lock directory, or its info is not a file".into(),
            },
            _ if e.kind() == io::ErrorKind::NotFound => Error::NoLock {
                path: id.lock_path.clone(),
                why: "no such lock (released already, or broken as stale)".into(),
            },
            _ => Error::io(&id.lock_path, e),
        })?;
    // Whatever --force says, only what the protocol made is removed.
    if let Some(why) = opened
        .not_protocol()
        .map_err(|e| Error::io(&id.lock_path, e))?
    {
        return Err(Error::BadLockId {
            id: shown,
            why: format!("{why}: not a lock lockrun made; nothing removed"),
        });
    }
    if let Some(target) = opened.target_mismatch(&id.hex) {
        return Err(Error::BadLockId {
            id: shown,
            why: format!("its info names {target}, whose lock has another name"),
        });
    }
    // As for `acquire`: the shell past the forked subshells (`( ... )`, `$(...)`).
    let owner = sys::owner::calling_shell(args.owner.unwrap_or_else(sys::parent_pid));
    let holder = opened.info.as_ref().map_or_else(
        || "a lock directory without holder information".to_string(),
        |i| i.describe(None),
    );
    if !owned_by(opened.info.as_ref(), owner) {
        if !args.force
            && let Some(pid) = opened.info.as_ref().and_then(|i| i.pid)
            && opened.info.as_ref().and_then(|i| i.hostname.as_deref()) == Some(&sys::hostname())
            && sys::pid_state(pid) == sys::PidState::Gone
        {
            return Err(Error::Refused {
                what: format!("lock {}", id.lock_path.display()),
                holder,
                hint: format!(
                    "its owner PID {pid} is gone, so the lock was stale (free for any taker) since then; acquire and release from one shell (`lockrun unlock FILE` removes it)"
                ),
                refusal: Refusal::NotOwner,
            });
        }
        if !args.force {
            return Err(Error::Refused {
                what: format!("lock {}", id.lock_path.display()),
                holder,
                hint: format!(
                    "it does not belong to this shell (PID {owner}); `lockrun release --force` releases it anyway"
                ),
                refusal: Refusal::NotOwner,
            });
        }
        let consequence = if opened.flocked {
            ""
        } else {
            "; its own release will report the lock as broken"
        };
        crate::quote::say(&format!(
            "warning: releasing the lock {} of {holder}, not ours{consequence}",
            id.lock_path.display()
        ));
    }
    match opened.remove(Grave::Released, &id.hex) {
        Ok(true) => Ok(ExitCode::Success),
        Ok(false) => Err(Error::NoLock {
            path: id.lock_path.clone(),
            why: "the lock changed while being released (broken or re-taken meanwhile); nothing removed".into(),
        }),
        Err(e) => Err(Error::io(&id.lock_path, e)),
    }
}

/// The lock was taken by `acquire` for `owner`: same PID, and the same start token when
/// one was recorded (so a reused PID is not the owner).
pub(super) fn owned_by(info: Option<&Info>, owner: u32) -> bool {
    let Some(info) = info else {
        return false;
    };
    if info.pid != Some(owner) || info.liveness == Some(Liveness::Flock) {
        return false;
    }
    match (&info.pid_start, sys::process_start_token(owner)) {
        (Some(recorded), Some(now)) => *recorded == now,
        (Some(_), None) => false,
        (None, _) => true,
    }
}
