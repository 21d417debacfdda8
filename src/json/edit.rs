//! The read-modify-write cycle every JSON writer shares: lock, read, compute, keep key
//! order, validate, render in the file's layout, back up, replace atomically, release.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use jaq_json::Val;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::backup::{self, BackupKind};
use crate::json::file::{Current, after_bom, from_start, read_file, take_lock};
use crate::json::layout::Layout;
use crate::json::order::{self, Tree};
use crate::json::schema::Schema;
use crate::json::{self as js, atomic, val, val_read};
use crate::lock::{LockGuard, LockOptions};

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
    /// The caller prints the new document (`--print`): [`Outcome::text`] is wanted
    /// even when the document is written without being held as text.
    pub print: bool,
    /// The document to start from when the file does not exist (`--create`).
    pub create: Option<Value>,
}

/// What a write did.
#[derive(Debug)]
pub struct Outcome {
    /// The new content (also when nothing was written). Empty for a document of more
    /// than [`STREAM_ABOVE`] bytes unless `print` or `dry_run` asked for it: such a
    /// document is streamed to the file rather than held as text.
    pub text: String,
}

/// Above this size a document is not held as text while its tree exists: it is parsed
/// from the file and rendered straight into the new file, so the peak memory of an
/// update is about the tree alone.
pub const STREAM_ABOVE: usize = 4 << 20;

fn release(guard: Option<LockGuard>) -> Result<()> {
    match guard {
        Some(g) => g.release(),
        None => Ok(()),
    }
}

/// A form a document can be edited in: serde_json's `Value` (pointer, patch) or jaq's
/// `Val` (`update`, so the filter works on the parsed document without a copy).
pub trait Doc: Sized + Tree {
    fn parse(origin: &str, bytes: &[u8]) -> Result<Self>;
    /// Parses the document in `file` (read from its start) without holding its text.
    fn parse_file(origin: &str, path: &Path, file: &File) -> Result<Self>;
    fn from_value(value: Value) -> Self;
    fn check_schema(&self, origin: &str, schema: &Schema) -> Result<()>;
    /// Whether it nests deeper than the limit every reader enforces (see `depth`).
    fn too_deep(&self) -> bool;
}

impl Doc for Value {
    fn parse(origin: &str, bytes: &[u8]) -> Result<Self> {
        js::parse(origin, bytes)
    }
    fn parse_file(origin: &str, path: &Path, file: &File) -> Result<Self> {
        js::parse_reader(origin, path, after_bom(path, file)?)
    }
    fn from_value(value: Value) -> Self {
        value
    }
    fn check_schema(&self, origin: &str, schema: &Schema) -> Result<()> {
        schema.check(origin, self)
    }
    fn too_deep(&self) -> bool {
        js::depth::value_too_deep(self)
    }
}

impl Doc for Val {
    fn parse(origin: &str, bytes: &[u8]) -> Result<Self> {
        val_read::from_slice(origin, bytes)
    }
    fn parse_file(origin: &str, path: &Path, file: &File) -> Result<Self> {
        val_read::from_reader(origin, path, after_bom(path, file)?)
    }
    fn from_value(value: Value) -> Self {
        val::into_val(value)
    }
    fn check_schema(&self, origin: &str, schema: &Schema) -> Result<()> {
        let value = val::from_val(self).map_err(|what| {
            Error::data(format!(
                "{origin}: the result is not JSON: {what} (nothing written)"
            ))
        })?;
        schema.check(origin, &value)
    }
    fn too_deep(&self) -> bool {
        // A filter's result is measured as it is checked (filter::check_json), which
        // skips what it shares with the input.
        false
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
    let confirm = || guard.as_ref().map_or(Ok(()), LockGuard::confirm);
    let outcome = modify_locked(file, &origin, opts, schema.as_ref(), compute, &confirm);
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
    confirm: &dyn Fn() -> Result<()>,
) -> Result<(Outcome, Option<Pending>)> {
    let current = read_file(file)?;
    let (old, layout, old_text, meta, old_file) = match current {
        Some(Current {
            bytes,
            meta,
            file: f,
        }) => {
            let layout = Layout::detect(&bytes);
            // Only a regular file can be read a second time (a FIFO cannot).
            let (value, text) = if bytes.len() > STREAM_ABOVE && meta.is_file() {
                js::check_start(origin, &bytes)?;
                drop(bytes);
                (D::parse_file(origin, file, &f)?, OldText::InFile)
            } else {
                (D::parse(origin, &bytes)?, OldText::Held(bytes))
            };
            (Some(value), layout, Some(text), Some(meta), Some(f))
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
    if new.too_deep() {
        return Err(Error::data(js::depth::result_message(origin, "the result")));
    }
    order::keep_key_order(start, &mut new);
    if let Some(schema) = schema {
        new.check_schema(origin, schema)?;
    }
    let changed = match &old {
        Some(o) => !order::same(o, &new),
        None => true,
    };
    let want_text = opts.print || opts.dry_run;
    let streamed = matches!(old_text, Some(OldText::InFile));
    if !changed || opts.dry_run {
        let text = match (&old_text, &old_file) {
            _ if changed => layout.render(&new),
            (Some(OldText::InFile), _) if !want_text => String::new(),
            // Unchanged: the file's own bytes are the answer.
            (Some(old), Some(f)) => String::from_utf8_lossy(&old.bytes(file, f)?).into_owned(),
            _ => String::new(),
        };
        let outcome = Outcome { text };
        return Ok((outcome, None));
    }
    let real = atomic::real_target(file)?;
    atomic::remove_stale_temps(&real);
    if let (Some(kind), Some(old), Some(f)) = (effective_backup(opts), &old_text, &old_file) {
        let bytes = old.bytes(file, f)?;
        backup::save(&real, &bytes, meta.as_ref(), kind, opts.backup_keep)?;
    }
    let (text, replaced) = if streamed && !want_text {
        drop(old_text);
        let replaced = atomic::replace_deferred_with(
            file,
            &real,
            meta.as_ref(),
            |out| layout.render_to(&new, out),
            confirm,
        )?;
        (String::new(), replaced)
    } else {
        let text = layout.render(&new);
        let replaced =
            atomic::replace_deferred(file, &real, text.as_bytes(), meta.as_ref(), confirm)?;
        (text, replaced)
    };
    let outcome = Outcome { text };
    Ok((outcome, Some(Pending { replaced, old_file })))
}

/// The old document's text: held, or left in the (still open) file.
enum OldText {
    Held(Vec<u8>),
    InFile,
}

impl OldText {
    /// The old text; read again from `file` (the open old file at `path`) if not held.
    fn bytes<'a>(&'a self, path: &Path, file: &File) -> Result<Cow<'a, [u8]>> {
        match self {
            OldText::Held(bytes) => Ok(Cow::Borrowed(bytes)),
            OldText::InFile => {
                let mut bytes = Vec::new();
                from_start(path, file)?
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::io(path, e))?;
                Ok(Cow::Owned(bytes))
            }
        }
    }
}

/// `--backup-keep N` alone means numbered backups.
pub(crate) fn effective_backup(opts: &WriteOptions) -> Option<BackupKind> {
    opts.backup
        .or(opts.backup_keep.map(|_| BackupKind::Numbered))
}

/// Replaces `file` with `data` as is (`write`); `json` refuses data that is not JSON.
pub(crate) fn replace_bytes(
    file: &Path,
    opts: &WriteOptions,
    data: &[u8],
    json: bool,
) -> Result<Outcome> {
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
    let confirm = || guard.as_ref().map_or(Ok(()), LockGuard::confirm);
    let result = (|| {
        let current = read_file(file)?;
        let changed = current.as_ref().is_none_or(|c| c.bytes != data);
        let text = String::from_utf8_lossy(data).into_owned();
        if !changed || opts.dry_run {
            let outcome = Outcome { text };
            return Ok((outcome, None));
        }
        let real = atomic::real_target(file)?;
        atomic::remove_stale_temps(&real);
        if let (Some(kind), Some(c)) = (effective_backup(opts), &current) {
            backup::save(&real, &c.bytes, Some(&c.meta), kind, opts.backup_keep)?;
        }
        let like = current.as_ref().map(|c| &c.meta);
        let replaced = atomic::replace_deferred(file, &real, data, like, &confirm)?;
        let outcome = Outcome { text };
        let old_file = current.map(|c| c.file);
        Ok((outcome, Some(Pending { replaced, old_file })))
    })();
    finish(guard, result)
}
