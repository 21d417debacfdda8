//! JSON under the lock: parse with precise errors, transform (jaq filters, JSON
//! Pointer, JSON Patch), validate, and replace the file atomically in its own layout.

#[cfg(any(unix, windows))]
pub(crate) mod atomic;
pub(crate) mod backup;
pub(crate) mod depth;
#[cfg(any(unix, windows))]
pub mod edit;
#[cfg(any(unix, windows))]
pub(crate) mod file;
pub(crate) mod filter;
pub(crate) mod guard;
pub(crate) mod jq;
pub(crate) mod layout;
pub(crate) mod order;
pub(crate) mod pointer;
#[cfg(any(unix, windows))]
pub(crate) mod regular;
pub(crate) mod schema;
pub(crate) mod stack;
pub(crate) mod val;
pub(crate) mod val_read;

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// Parses `bytes` (the contents of `origin`, a file name or `<stdin>`, `--argjson x`...)
/// as one JSON document. Errors name `origin` with line:column.
pub(crate) fn parse(origin: &str, bytes: &[u8]) -> Result<Value> {
    check_start(origin, bytes)?;
    let bytes = strip_bom(bytes).0;
    check_depth(origin, bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // The nesting limit was checked above; serde_json's own (128) would refuse less.
    de.disable_recursion_limit();
    serde::Deserialize::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| json_error(origin, &e))
}

/// Parses the document `reader` yields (`path`, shown as `origin`), within the nesting
/// limit.
pub(crate) fn parse_reader(origin: &str, path: &Path, reader: impl std::io::Read) -> Result<Value> {
    let mut de = serde_json::Deserializer::from_reader(depth::CheckedRead::new(reader));
    de.disable_recursion_limit();
    serde::Deserialize::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| read_error(origin, path, e))
}

/// The nesting limit (see [`depth`]) for a document's text.
pub(crate) fn check_depth(origin: &str, bytes: &[u8]) -> Result<()> {
    depth::check_text(bytes).map_err(|deep| Error::data(deep.message(origin)))
}

/// `bytes` without a leading UTF-8 byte order mark, and whether there was one. JSON
/// must not start with one (RFC 8259 §8.1), but jq reads it, and so does lockrun
/// (a rewrite keeps it: see `Layout::bom`).
pub(crate) fn strip_bom(bytes: &[u8]) -> (&[u8], bool) {
    match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (rest, true),
        None => (bytes, false),
    }
}

/// The fault a parser would report badly: no value at all.
pub(crate) fn check_start(origin: &str, bytes: &[u8]) -> Result<()> {
    let bytes = strip_bom(bytes).0;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::data(format!(
            "{origin}: invalid JSON: {}",
            if bytes.is_empty() {
                "empty"
            } else {
                "only whitespace"
            }
        )));
    }
    Ok(())
}

/// `origin:line:column: invalid JSON: what`.
pub(crate) fn json_error(origin: &str, e: &serde_json::Error) -> Error {
    let text = e.to_string();
    let what = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    Error::data(format!(
        "{origin}:{}:{}: invalid JSON: {what}",
        e.line(),
        e.column()
    ))
}

/// An error parsing a document read from `path`: a read error names the path, the
/// rest are [`json_error`]s.
pub(crate) fn read_error(origin: &str, path: &Path, e: serde_json::Error) -> Error {
    if e.is_io() {
        let e = std::io::Error::from(e);
        match depth::too_deep_in(&e) {
            Some(deep) => Error::data(deep.message(origin)),
            None => Error::io(path, e),
        }
    } else {
        json_error(origin, &e)
    }
}

/// The name to show for `path` in messages.
pub(crate) fn display(path: &Path) -> String {
    path.display().to_string()
}
