//! The etcd backend: locks kept in an etcd cluster, for hosts that share no kernel.
//! `gateway` speaks etcd's HTTP/JSON gateway, `lock` is the lock protocol on top of it,
//! `config` turns `--backend` and its options into a client; this file connects them to
//! the lock engine's [`LockGuard`].

pub mod config;
pub(crate) mod gateway;
pub(crate) mod lock;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::info::Mode;
use super::{LockGuard, LockKey, LockOptions};
use crate::error::{Error, Result};
use config::{ConfigError, EtcdSettings};
use gateway::GwError;
use lock::{LockError, Request, Store};

/// The client for `settings`, or the one line that says why it cannot be had.
pub(crate) fn store(settings: &EtcdSettings) -> Result<Store> {
    settings.store().map_err(|e| match e {
        ConfigError::Usage(msg) => Error::Usage(msg),
        ConfigError::File { path, source } => Error::io(path, source),
        ConfigError::Tls(msg) => Error::Etcd(format!("{}: {msg}", settings.url)),
    })
}

/// Takes `key`'s lock in etcd, as [`super::acquire`] does in a lock directory.
pub(crate) fn acquire(
    key: LockKey,
    settings: &EtcdSettings,
    opts: &LockOptions,
) -> Result<LockGuard> {
    let store = store(settings)?;
    let name = key.target.to_string_lossy().into_owned();
    if let Some(why) = lock::name_problem(&name) {
        return Err(Error::usage(format!("{name}: an etcd lock name {why}")));
    }
    let mode = if opts.shared {
        Mode::Shared
    } else {
        Mode::Exclusive
    };
    let mut info = super::build_info(&key, opts, mode);
    // Sub-second, so that "held 0.4s" means what it says; the liveness is the lease's.
    info.acquired = Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string());
    info.liveness = None;
    // An `acquire` lock keeps its owner's start token: `release` checks it.
    if opts.owner == super::Owner::ThisProcess {
        info.pid_start = None;
    }
    let request = Request {
        name: &name,
        shared: opts.shared,
        timeout: opts.timeout,
        notice_after: opts.notice_after,
        info,
    };
    crate::trace::step(|| {
        format!(
            "acquire {name} ({}) in etcd at {}",
            mode.as_str(),
            settings.url
        )
    });
    match store.acquire(&request) {
        Ok(held) => Ok(LockGuard {
            key,
            lock_dir: PathBuf::new(),
            held: None,
            reader_gate: None,
            remote: Some(held),
        }),
        Err(LockError::Busy { holder, waited }) => Err(Error::Busy {
            target: PathBuf::from(&name),
            holder,
            waited: match opts.timeout {
                Some(t) if t.is_zero() => "one try (-n)".to_string(),
                Some(t) => super::format_age(t),
                None => super::format_age(waited),
            },
            conflict_code: None,
        }),
        Err(e) => Err(lock_error(e)),
    }
}

/// The error to report for a failed etcd lock operation.
pub(crate) fn lock_error(e: LockError) -> Error {
    match e {
        LockError::Busy { holder, waited } => Error::Etcd(format!(
            "busy: held by {holder} after {}",
            super::format_age(waited)
        )),
        LockError::Lost(line) => Error::LeaseLost(line),
        LockError::Etcd(e) => gateway_error(e),
    }
}

pub(crate) fn gateway_error(e: GwError) -> Error {
    match e {
        GwError::Auth(why) => Error::EtcdAuth(format!("etcd refused access: {why}")),
        other => Error::Etcd(other.to_string()),
    }
}

/// How long `status`, `unlock` and `show` give etcd to answer.
pub(crate) const LOOK_TIMEOUT: Duration = Duration::from_secs(5);
