//! The arguments every lock-taking command shares, and the number parsers.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

// The one declaration of --lock-dir, flattened wherever a command names a lock
// directory (a plain comment: see LockArgs). `show` and `cleanup`, whose FILE is
// optional, say in their description where they look without it.
#[derive(Debug, Clone, Args)]
pub(crate) struct LockDirArg {
    /// Directory that holds the locks [default: .locks beside FILE].
    #[arg(long, value_name = "DIR", env = "LOCKRUN_DIR")]
    pub(crate) lock_dir: Option<PathBuf>,
}

// Where the lock lives when it is not in a lock directory, and which lock: the etcd
// backend and --name (a plain comment: see LockArgs). Nothing here costs the local path
// anything: the etcd client is built only when --backend names etcd.
#[derive(Debug, Clone, Args)]
pub(crate) struct BackendArgs {
    /// Keep the lock in etcd instead of a lock directory: etcd://HOST:PORT[,HOST:PORT...]
    /// (the members are tried in turn), or etcds://... for TLS.
    #[arg(
        long,
        value_name = "URL",
        env = "LOCKRUN_BACKEND",
        help_heading = "Several machines"
    )]
    pub(crate) backend: Option<String>,

    /// Lock NAME instead of FILE's path: one lock for every host, wherever it mounts the
    /// file. Locally a name's lock lives in --lock-dir, else LOCKRUN_DIR, else
    /// $XDG_STATE_HOME/lockrun (~/.local/state/lockrun; on Windows
    /// %LOCALAPPDATA%\lockrun, for every shell).
    #[arg(long, value_name = "NAME", help_heading = "Several machines")]
    pub(crate) name: Option<String>,

    /// etcd: prefix of lockrun's keys [default: lockrun/].
    #[arg(
        long,
        value_name = "PREFIX",
        env = "LOCKRUN_ETCD_PREFIX",
        help_heading = "Several machines"
    )]
    pub(crate) etcd_prefix: Option<String>,

    /// etcd: lease TTL in whole seconds [default: 2]. A killed holder's lock is handed on
    /// within about TTL + 0.5 s; keepalives go out every TTL/3 (every 250 ms at 2 s, to
    /// outlast a leader election).
    #[arg(long, value_name = "SECS", env = "LOCKRUN_LEASE_TTL", value_parser = parse_seconds, help_heading = "Several machines")]
    pub(crate) lease_ttl: Option<Duration>,

    /// etcds://: the CA certificate(s) to trust, PEM [default: the bundled web roots].
    #[arg(
        long,
        value_name = "FILE",
        env = "LOCKRUN_ETCD_CA",
        help_heading = "Several machines"
    )]
    pub(crate) etcd_ca: Option<PathBuf>,

    /// etcds://: client certificate (PEM), with --etcd-key.
    #[arg(
        long,
        value_name = "FILE",
        env = "LOCKRUN_ETCD_CERT",
        help_heading = "Several machines"
    )]
    pub(crate) etcd_cert: Option<PathBuf>,

    /// etcds://: the client certificate's private key (PEM). The etcd user and password
    /// come from LOCKRUN_ETCD_USER and LOCKRUN_ETCD_PASSWORD only.
    #[arg(
        long,
        value_name = "FILE",
        env = "LOCKRUN_ETCD_KEY",
        help_heading = "Several machines"
    )]
    pub(crate) etcd_key: Option<PathBuf>,
}

#[cfg(unix)]
impl BackendArgs {
    /// The etcd backend asked for, if any (an empty LOCKRUN_BACKEND means none).
    pub(crate) fn etcd(&self) -> Option<crate::lock::EtcdSettings> {
        let url = self.backend.as_deref().filter(|u| !u.trim().is_empty())?;
        Some(self.etcd_at(url.trim()))
    }

    /// The etcd settings of these options for the members at `url` (`release` takes
    /// them from the id, and the TLS files and the rest from the options all the same).
    pub(crate) fn etcd_at(&self, url: &str) -> crate::lock::EtcdSettings {
        crate::lock::EtcdSettings {
            url: url.to_string(),
            prefix: self.etcd_prefix.clone(),
            ttl: self.lease_ttl,
            ca: self.etcd_ca.clone(),
            cert: self.etcd_cert.clone(),
            key: self.etcd_key.clone(),
        }
    }
}

#[cfg(windows)]
impl BackendArgs {
    /// The etcd backend is built on Unix only: a `--backend`/LOCKRUN_BACKEND URL is
    /// refused as `etcds://` is off Linux (unavailable, 69) rather than ignored, which
    /// would take a local lock that other machines never see.
    pub(crate) fn refuse_etcd(&self) -> crate::error::Result<()> {
        match self.backend.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => Err(crate::error::Error::Etcd(format!(
                "--backend {url}: the etcd backend is built into lockrun on Unix only, for now; on Windows locks live in a lock directory (unset --backend/LOCKRUN_BACKEND)"
            ))),
            _ => Ok(()),
        }
    }
}

// Options of every command that takes a lock. (A plain comment: with deferred
// subcommands, a flattened struct's doc comment would replace the subcommand's about.)
#[derive(Debug, Clone, Args)]
pub(crate) struct LockArgs {
    #[command(flatten)]
    pub(crate) dir: LockDirArg,

    #[command(flatten)]
    pub(crate) backend: BackendArgs,

    /// Wait at most SECS for a busy lock (fractions allowed; "inf" waits forever).
    #[arg(
        short = 'w',
        long = "timeout",
        value_name = "SECS",
        env = "LOCKRUN_TIMEOUT",
        default_value = "30",
        value_parser = parse_timeout,
        allow_negative_numbers = true,
    )]
    pub(crate) timeout: Timeout,

    /// Do not wait: fail at once if the lock is busy (same as -w 0).
    #[arg(short = 'n', long = "nonblock")]
    pub(crate) nonblock: bool,

    /// Exit with CODE instead of 75 when the lock is busy (hooks use -w 2 -E 0).
    #[arg(short = 'E', long = "conflict-exit-code", value_name = "CODE", value_parser = clap::value_parser!(u8), allow_negative_numbers = true)]
    pub(crate) conflict_exit_code: Option<u8>,

    /// Name recorded in the lock and shown to whoever finds it busy (e.g. mcp-server).
    #[arg(long, value_name = "NAME")]
    pub(crate) label: Option<String>,

    /// Treat a lock held from another host as dead after SECS (default: never).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub(crate) stale_after: Option<Duration>,
}

/// A wait limit: `None` waits forever.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Timeout(pub(crate) Option<Duration>);

fn parse_timeout(text: &str) -> Result<Timeout, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity") {
        return Ok(Timeout(None));
    }
    parse_seconds(t).map(|d| Timeout(Some(d)))
}

/// Seconds as a non-negative decimal number: "5", "0.3", "1e-3".
pub(crate) fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if secs < 0.0 {
        return Err(format!("'{text}': a number of seconds cannot be negative"));
    }
    if !secs.is_finite() {
        return Err(format!("'{text}' is not a finite number of seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("'{text}': {e}"))
}

impl LockArgs {
    /// The effective wait: -n wins over -w.
    pub(crate) fn wait(&self) -> Option<Duration> {
        if self.nonblock {
            Some(Duration::ZERO)
        } else {
            self.timeout.0
        }
    }
}
