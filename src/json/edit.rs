//! The read-modify-write cycle every JSON writer shares: lock, read, compute, keep key
//! order, validate, render in the file's layout, back up, replace atomically, release.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use jaq_json::Val;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::backup::{self, BackupKind};
use crate::json::filter;
use crate::json::layout::{Layout, Node};
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

/// A file as read: its bytes, its metadata and the still-open file.
#[derive(Debug)]
pub struct Current {
    pub bytes: Vec<u8>,
    pub meta: fs::Metadata,
    /// Kept open on purpose: while it is, replacing the file does not free the old
    /// inode (on ext4 a truncate and a discard of its blocks). Dropping it after the
    /// lock is released moves that cost out of the time the lock is held.
    pub file: File,
}

/// The file's bytes and metadata; `None` when it does not exist.
pub fn read_file(path: &Path) -> Result<Option<Current>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::io(
            path,
            io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory, not a JSON file",
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).saturating_add(1));
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(Some(Current { bytes, meta, file }))
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

/// A form a document can be edited in: serde_json's `Value` (pointer, patch) or jaq's
/// `Val` (`update`, so the filter works on the parsed document without a copy).
pub trait Doc: Sized + Node {
    fn parse(origin: &str, bytes: &[u8]) -> Result<Self>;
    fn from_value(value: Value) -> Self;
    /// Equal as written (the no-op test).
    fn same(&self, other: &Self) -> bool;
    /// See [`keep_key_order`].
    fn keep_key_order(old: &Self, new: &mut Self);
    fn check_schema(&self, origin: &str, schema: &Schema) -> Result<()>;
}

impl Doc for Value {
    fn parse(origin: &str, bytes: &[u8]) -> Result<Self> {
        js::parse(origin, bytes)
    }
    fn from_value(value: Value) -> Self {
        value
    }
    fn same(&self, other: &Self) -> bool {
        js::same(self, other)
    }
    fn keep_key_order(old: &Self, new: &mut Self) {
        keep_key_order(old, new);
    }
    fn check_schema(&self, origin: &str, schema: &Schema) -> Result<()> {
        schema.check(origin, self)
    }
}

impl Doc for Val {
    fn parse(origin: &str, bytes: &[u8]) -> Result<Self> {
        js::parse(origin, bytes).map(filter::into_val)
    }
    fn from_value(value: Value) -> Self {
        filter::into_val(value)
    }
    fn same(&self, other: &Self) -> bool {
        filter::same_val(self, other)
    }
    fn keep_key_order(old: &Self, new: &mut Self) {
        filter::keep_key_order_val(old, new);
    }
    fn check_schema(&self, origin: &str, schema: &Schema) -> Result<()> {
        let value = filter::from_val(self).map_err(|what| {
            Error::data(format!(
                "{origin}: the result is not JSON: {what} (nothing written)"
            ))
        })?;
        schema.check(origin, &value)
    }
}

/// Read-modify-write of the JSON document in `file`; `compute` gets the current
/// document and returns the new one.
pub fn modify<D: Doc>(
    file: &Path,
    opts: &WriteOptions,
    compute: impl FnOnce(&str, &D) -> Result<D>,
) -> Result<Outcome> {
    let origin = js::display(file);
    let schema = opts
        .schema
        .as_deref()
        .map(|p| Schema::load(&origin, p))
        .transpose()?;
    let guard = take_lock(file, &opts.lock, opts.no_lock)?;
    let outcome = modify_locked(file, &origin, opts, schema.as_ref(), compute);
    finish(guard, outcome)
}

/// A replace done under the lock whose remaining work waits for the lock's release.
struct Pending {
    replaced: atomic::Replaced,
    /// The replaced file, still open (see [`Current::file`]).
    old_file: Option<File>,
}

/// Releases the lock, then makes a replace durable (see [`atomic::Replaced`]) and
/// lets the old file go.
fn finish(
    guard: Option<LockGuard>,
    outcome: Result<(Outcome, Option<Pending>)>,
) -> Result<Outcome> {
    match outcome {
        Ok((o, pending)) => {
            let released = release(guard);
            if let Some(p) = pending {
                p.replaced.finish()?;
                drop(p.old_file);
            }
            released?;
            Ok(o)
        }
        Err(e) => {
            drop(guard);
            Err(e)
        }
    }
}

fn modify_locked<D: Doc>(
    file: &Path,
    origin: &str,
    opts: &WriteOptions,
    schema: Option<&Schema>,
    compute: impl FnOnce(&str, &D) -> Result<D>,
) -> Result<(Outcome, Option<Pending>)> {
    let current = read_file(file)?;
    let (old, layout, old_bytes, meta, old_file) = match current {
        Some(Current { bytes, meta, file }) => {
            let value = D::parse(origin, &bytes)?;
            let layout = Layout::detect(&bytes);
            (Some(value), layout, Some(bytes), Some(meta), Some(file))
        }
        None if opts.create.is_some() => (None, Layout::default(), None, None, None),
        None => {
            return Err(Error::Missing {
                path: file.to_path_buf(),
            });
        }
    };
    let created = match (&old, &opts.create) {
        (None, Some(v)) => Some(D::from_value(v.clone())),
        _ => None,
    };
    let Some(start) = old.as_ref().or(created.as_ref()) else {
        return Err(Error::Missing {
            path: file.to_path_buf(),
        });
    };
    let mut new = compute(origin, start)?;
    D::keep_key_order(start, &mut new);
    if let Some(schema) = schema {
        new.check_schema(origin, schema)?;
    }
    let changed = match &old {
        Some(o) => !o.same(&new),
        None => true,
    };
    let text = if changed {
        layout.render(&new)
    } else {
        // Unchanged: the file's own bytes are the answer.
        String::from_utf8_lossy(old_bytes.as_deref().unwrap_or_default()).into_owned()
    };
    if !changed || opts.dry_run {
        let outcome = Outcome {
            text,
            changed,
            written: false,
        };
        return Ok((outcome, None));
    }
    let real = atomic::real_target(file)?;
    atomic::remove_stale_temps(&real);
    if let (Some(kind), Some(bytes)) = (effective_backup(opts), &old_bytes) {
        backup::save(&real, bytes, meta.as_ref(), kind, opts.backup_keep)?;
    }
    let replaced = atomic::replace_deferred(file, &real, text.as_bytes(), meta.as_ref())?;
    let outcome = Outcome {
        text,
        changed,
        written: true,
    };
    Ok((outcome, Some(Pending { replaced, old_file })))
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
        let changed = current.as_ref().is_none_or(|c| c.bytes != data);
        let text = String::from_utf8_lossy(data).into_owned();
        if !changed || opts.dry_run {
            let outcome = Outcome {
                text,
                changed,
                written: false,
            };
            return Ok((outcome, None));
        }
        let real = atomic::real_target(file)?;
        atomic::remove_stale_temps(&real);
        if let (Some(kind), Some(c)) = (effective_backup(opts), &current) {
            backup::save(&real, &c.bytes, Some(&c.meta), kind, opts.backup_keep)?;
        }
        let like = current.as_ref().map(|c| &c.meta);
        let replaced = atomic::replace_deferred(file, &real, data, like)?;
        let outcome = Outcome {
            text,
            changed,
            written: true,
        };
        let old_file = current.map(|c| c.file);
        Ok((outcome, Some(Pending { replaced, old_file })))
    })();
    finish(guard, result)
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
