//! The read-modify-write cycle every JSON writer shares: lock, read, compute, keep key
//! order, validate, render in the file's layout, back up, replace atomically, release.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::backup::{self, BackupKind};
use crate::json::layout::Layout;
use crate::json::schema::Schema;
use crate::json::{self as js, atomic};
use crate::lock::{self, LockGuard, LockOptions};

/// How a writer writes.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub lock: LockOptions,
    /// Write without taking the lock (`write --no-lock`).
    pub no_lock: bool,
    pub backup: Option<BackupKind>,
    pub backup_keep: Option<usize>,
    pub schema: Option<PathBuf>,
    pub dry_run: bool,
    /// The document to start from when the file does not exist (`--create`).
    pub create: Option<Value>,
}

/// What a write did.
#[derive(Debug)]
pub struct Outcome {
    /// The new content (also when nothing was written).
    pub text: String,
    /// The new content differs from the old.
    pub changed: bool,
    /// The file was replaced.
    pub written: bool,
}

/// The file's bytes and metadata; `None` when it does not exist.
pub fn read_file(path: &Path) -> Result<Option<(Vec<u8>, fs::Metadata)>> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    if meta.is_dir() {
        return Err(Error::io(
            path,
            io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory, not a JSON file",
            ),
        ));
    }
    match fs::read(path) {
        Ok(bytes) => Ok(Some((bytes, meta))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Takes FILE's lock (unless `no_lock`).
pub fn take_lock(file: &Path, opts: &LockOptions, no_lock: bool) -> Result<Option<LockGuard>> {
    if no_lock {
        return Ok(None);
    }
    lock::acquire(file, opts).map(Some)
}

fn release(guard: Option<LockGuard>) -> Result<()> {
    match guard {
        Some(g) => g.release(),
        None => Ok(()),
    }
}

/// Read-modify-write of the JSON document in `file`; `compute` gets the current
/// document and returns the new one.
pub fn modify(
    file: &Path,
    opts: &WriteOptions,
    compute: impl FnOnce(&str, &Value) -> Result<Value>,
) -> Result<Outcome> {
    let origin = js::display(file);
    let schema = opts
        .schema
        .as_deref()
        .map(|p| Schema::load(&origin, p))
        .transpose()?;
    let guard = take_lock(file, &opts.lock, opts.no_lock)?;
    let outcome = modify_locked(
        file,
        &origin,
        opts,
        schema.as_ref(),
        compute,
        guard.is_some(),
    );
    match outcome {
        Ok(o) => {
            release(guard)?;
            Ok(o)
        }
        Err(e) => {
            drop(guard);
            Err(e)
        }
    }
}

fn modify_locked(
    file: &Path,
    origin: &str,
    opts: &WriteOptions,
    schema: Option<&Schema>,
    compute: impl FnOnce(&str, &Value) -> Result<Value>,
    locked: bool,
) -> Result<Outcome> {
    let current = read_file(file)?;
    let (old, layout, old_bytes, meta) = match current {
        Some((bytes, meta)) => {
            let value = js::parse(origin, &bytes)?;
            let layout = Layout::detect(&bytes);
            (Some(value), layout, Some(bytes), Some(meta))
        }
        None if opts.create.is_some() => (None, Layout::default(), None, None),
        None => {
            return Err(Error::Missing {
                path: file.to_path_buf(),
            });
        }
    };
    let start = match (&old, &opts.create) {
        (Some(v), _) | (None, Some(v)) => v,
        (None, None) => {
            return Err(Error::Missing {
                path: file.to_path_buf(),
            });
        }
    };
    let mut new = compute(origin, start)?;
    keep_key_order(start, &mut new);
    if let Some(schema) = schema {
        schema.check(origin, &new)?;
    }
    let changed = match &old {
        Some(o) => !js::same(o, &new),
        None => true,
    };
    let text = if changed {
        layout.render(&new)
    } else {
        // Unchanged: the file's own bytes are the answer.
        String::from_utf8_lossy(old_bytes.as_deref().unwrap_or_default()).into_owned()
    };
    if !changed || opts.dry_run {
        return Ok(Outcome {
            text,
            changed,
            written: false,
        });
    }
    let real = atomic::real_target(file)?;
    if locked {
        atomic::remove_stale_temps(&real);
    }
    if let (Some(kind), Some(bytes)) = (effective_backup(opts), &old_bytes) {
        backup::save(&real, bytes, meta.as_ref(), kind, opts.backup_keep)?;
    }
    atomic::replace(file, &real, text.as_bytes(), meta.as_ref())?;
    Ok(Outcome {
        text,
        changed,
        written: true,
    })
}

/// `--backup-keep N` alone means numbered backups.
pub fn effective_backup(opts: &WriteOptions) -> Option<BackupKind> {
    opts.backup
        .or(opts.backup_keep.map(|_| BackupKind::Numbered))
}

/// Replaces `file` with `data` as is (`write`); `json` refuses data that is not JSON.
pub fn replace_bytes(file: &Path, opts: &WriteOptions, data: &[u8], json: bool) -> Result<Outcome> {
    let origin = js::display(file);
    let schema = opts
        .schema
        .as_deref()
        .map(|p| Schema::load(&origin, p))
        .transpose()?;
    if json || schema.is_some() {
        let doc = js::parse(&format!("{origin}: <stdin>"), data)?;
        if let Some(s) = &schema {
            s.check(&origin, &doc)?;
        }
    }
    let guard = take_lock(file, &opts.lock, opts.no_lock)?;
    let result = (|| {
        let current = read_file(file)?;
        let changed = current.as_ref().is_none_or(|(b, _)| b != data);
        let text = String::from_utf8_lossy(data).into_owned();
        if !changed || opts.dry_run {
            return Ok(Outcome {
                text,
                changed,
                written: false,
            });
        }
        let real = atomic::real_target(file)?;
        if guard.is_some() {
            atomic::remove_stale_temps(&real);
        }
        if let (Some(kind), Some((bytes, meta))) = (effective_backup(opts), &current) {
            backup::save(&real, bytes, Some(meta), kind, opts.backup_keep)?;
        }
        atomic::replace(file, &real, data, current.as_ref().map(|(_, m)| m))?;
        Ok(Outcome {
            text,
            changed,
            written: true,
        })
    })();
    match result {
        Ok(o) => {
            release(guard)?;
            Ok(o)
        }
        Err(e) => {
            drop(guard);
            Err(e)
        }
    }
}

/// Puts object keys back in their old order where an operation removed a key: jaq's
/// `del`, JSON Patch `remove`/`move` and JSON Pointer deletion remove keys by
/// swapping the last key into the hole. Objects that lost no key keep the order the
/// operation gave them (so deliberate reordering in a filter survives); new keys stay
/// after the old ones.
pub fn keep_key_order(old: &Value, new: &mut Value) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, v) in n.iter_mut() {
                if let Some(ov) = o.get(k) {
                    keep_key_order(ov, v);
                }
            }
            let lost_key = o.keys().any(|k| !n.contains_key(k));
            if lost_key {
                let mut taken = std::mem::take(n);
                let mut ordered = serde_json::Map::with_capacity(taken.len());
                for k in o.keys() {
                    if let Some((k, v)) = taken.shift_remove_entry(k) {
                        ordered.insert(k, v);
                    }
                }
                for (k, v) in taken {
                    ordered.insert(k, v);
                }
                *n = ordered;
            }
        }
        (Value::Array(o), Value::Array(n)) if o.len() == n.len() => {
            for (ov, nv) in o.iter().zip(n.iter_mut()) {
                keep_key_order(ov, nv);
            }
        }
        _ => {}
    }
}
