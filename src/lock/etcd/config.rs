//! `--backend etcd://HOST:PORT[,HOST:PORT...]` (or `etcds://` for TLS) and the options
//! around it, turned into a [`Store`]. Nothing here runs unless a backend URL was given.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::gateway::{Endpoints, Gateway, GwError, Tls};
use super::lock::{DEFAULT_PREFIX, DEFAULT_TTL, Store};

/// The user and password for etcd's auth come from these variables only (never argv,
/// which every user of the host can read in `ps`).
pub(crate) const USER_VAR: &str = "LOCKRUN_ETCD_USER";
pub(crate) const PASSWORD_VAR: &str = "LOCKRUN_ETCD_PASSWORD";

/// Everything that says how to reach etcd and how to keep locks there.
#[derive(Debug, Clone, Default)]
pub struct EtcdSettings {
    /// The `--backend` URL.
    pub url: String,
    pub prefix: Option<String>,
    pub ttl: Option<Duration>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Why the settings cannot be used.
#[derive(Debug)]
pub(crate) enum ConfigError {
    /// The URL or an option is malformed (a usage error).
    Usage(String),
    /// A TLS file cannot be read.
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A TLS file holds no usable PEM data.
    Tls(String),
}

/// Whether an `etcd://` or `etcds://` URL asks for TLS, and its `HOST:PORT`s.
pub(crate) fn parse_url(url: &str) -> Result<(bool, Vec<String>), String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("etcd://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("etcds://") {
        (true, rest)
    } else {
        return Err(format!(
            "--backend {url}: not an etcd URL (etcd://HOST:PORT[,HOST:PORT...], or etcds:// for TLS)"
        ));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut hosts = Vec::new();
    for part in rest.split(',') {
        let part = part.trim();
        let Some((host, port)) = part.rsplit_once(':') else {
            return Err(format!(
                "--backend {url}: '{part}' is not HOST:PORT (etcd's client port is usually 2379)"
            ));
        };
        let host_ok = !host.is_empty()
            && host.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':')
            });
        if !host_ok {
            return Err(format!(
                "--backend {url}: '{host}' is not a host name or address"
            ));
        }
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("--backend {url}: '{port}' is not a port number"));
        }
        hosts.push(part.to_string());
    }
    Ok((tls, hosts))
}

impl EtcdSettings {
    /// Checks the URL, reads the TLS files and the credentials, and builds the client.
    pub(crate) fn store(&self) -> Result<Store, ConfigError> {
        let (tls, hosts) = parse_url(&self.url).map_err(ConfigError::Usage)?;
        let prefix = self.prefix.clone().unwrap_or_else(|| DEFAULT_PREFIX.into());
        if prefix.contains('\0') {
            return Err(ConfigError::Usage(
                "--etcd-prefix: a prefix cannot contain a NUL byte".into(),
            ));
        }
        let ttl = self.ttl.unwrap_or(DEFAULT_TTL);
        if ttl < Duration::from_secs(1) || ttl.subsec_nanos() != 0 {
            return Err(ConfigError::Usage(format!(
                "--lease-ttl {}: etcd leases last whole seconds, at least 1 (etcd raises it to its minimum, 2 s by default)",
                ttl.as_secs_f64()
            )));
        }
        if !tls && (self.ca.is_some() || self.cert.is_some() || self.key.is_some()) {
            return Err(ConfigError::Usage(format!(
                "--etcd-ca/--etcd-cert/--etcd-key need an etcds:// backend, not {}",
                self.url
            )));
        }
        let tls = if tls {
            let client = match (&self.cert, &self.key) {
                (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
                (None, None) => None,
                _ => {
                    return Err(ConfigError::Usage(
                        "--etcd-cert and --etcd-key go together".into(),
                    ));
                }
            };
            let ca = match &self.ca {
                Some(ca) => Some(read(ca)?),
                None => None,
            };
            Some(Tls { ca, client })
        } else {
            None
        };
        let user = match (std::env::var(USER_VAR), std::env::var(PASSWORD_VAR)) {
            (Ok(u), Ok(p)) if !u.is_empty() => Some((u, p)),
            (Ok(u), Err(_)) if !u.is_empty() => {
                return Err(ConfigError::Usage(format!(
                    "{USER_VAR} is set but {PASSWORD_VAR} is not"
                )));
            }
            _ => None,
        };
        let gateway = Gateway::new(&Endpoints { hosts, tls, user }).map_err(|e| match e {
            GwError::Tls(why) => ConfigError::Tls(why),
            other => ConfigError::Tls(other.to_string()),
        })?;
        Ok(Store {
            gateway,
            prefix,
            ttl,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::File {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_hosts_and_ports() {
        assert_eq!(
            parse_url("etcd://127.0.0.1:2379,10.0.0.2:2379").unwrap(),
            (
                false,
                vec!["127.0.0.1:2379".to_string(), "10.0.0.2:2379".to_string()]
            )
        );
        assert_eq!(
            parse_url("etcds://etcd.example:2379/").unwrap(),
            (true, vec!["etcd.example:2379".to_string()])
        );
        for bad in [
            "http://127.0.0.1:2379",
            "etcd://",
            "etcd://127.0.0.1",
            "etcd://127.0.0.1:0",
            "etcd://127.0.0.1:x",
            "etcd://a b:2379",
            "etcd://127.0.0.1:2379,",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
