//! RFC 6901 JSON Pointer access (`get`, `set`, `delete`, `read FILE POINTER`) via jsonptr.

use jsonptr::Pointer;
use serde_json::Value;

use crate::error::{Error, Result};

/// Parses a pointer given on the command line (usage error when malformed).
pub(crate) fn parse(text: &str) -> Result<&Pointer> {
    Pointer::parse(text).map_err(|e| {
        Error::usage(format!(
            "'{text}' is not a JSON Pointer ({e}); pointers look like /key/0/sub (empty for the whole document)"
        ))
    })
}

/// The value at `ptr` in `doc`, the document of `origin`.
pub(crate) fn get<'v>(origin: &str, doc: &'v Value, ptr: &Pointer) -> Result<&'v Value> {
    ptr.resolve(doc)
        .map_err(|e| Error::data(format!("{origin}: no value at '{ptr}': {e}")))
}

/// Sets the value at `ptr` (creating missing objects on the way; `-` appends).
pub(crate) fn set(origin: &str, doc: &mut Value, ptr: &Pointer, value: Value) -> Result<()> {
    if ptr.is_root() {
        *doc = value;
        return Ok(());
    }
    // Refuse to go through a scalar (jsonptr would replace it with an object).
    let mut at = ptr;
    while let Some(parent) = at.parent() {
        if let Ok(v) = parent.resolve(doc)
            && !(v.is_object() || v.is_array())
        {
            return Err(Error::data(format!(
                "{origin}: cannot set '{ptr}': '{parent}' is {} (nothing written)",
                kind(v)
            )));
        }
        at = parent;
    }
    ptr.assign(doc, value).map(|_| ()).map_err(|e| {
        Error::data(format!(
            "{origin}: cannot set '{ptr}': {e} (nothing written)"
        ))
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Removes the value at `ptr`.
pub(crate) fn delete(origin: &str, doc: &mut Value, ptr: &Pointer) -> Result<()> {
    if ptr.is_root() {
        return Err(Error::usage(
            "delete needs a pointer below the root (the whole document cannot be deleted)",
        ));
    }
    match ptr.delete(doc) {
        Some(_) => Ok(()),
        None => Err(Error::data(format!(
            "{origin}: no value at '{ptr}' to delete (nothing written)"
        ))),
    }
}
