//! `lockrun set|delete FILE POINTER`: RFC 6901 JSON Pointer edits under the lock.

use serde_json::Value;

use crate::cli::{DeleteArgs, SetArgs};
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;
use crate::json::pointer;

pub(crate) fn set(args: &SetArgs, quiet: bool) -> Result<ExitCode> {
    let ptr = pointer::parse(&args.pointer)?;
    let value = if args.string {
        Value::String(args.value.clone())
    } else {
        crate::json::parse(
            &format!("{}: VALUE", args.file.display()),
            args.value.as_bytes(),
        )
        .map_err(|e| match e {
            Error::Data(msg) => Error::Data(format!(
                "{msg} (use --string to store it as a plain string)"
            )),
            other => other,
        })?
    };
    let create = super::options::parse_create(&args.file, args.create.create.as_deref())?;
    super::options::modify(
        &args.file,
        &args.common,
        create,
        &args.print,
        quiet,
        format!("lockrun set {}", args.pointer),
        |origin, doc: &Value| {
            let mut doc = doc.clone();
            pointer::set(origin, &mut doc, ptr, value)?;
            Ok(doc)
        },
    )
}

pub(crate) fn delete(args: &DeleteArgs, quiet: bool) -> Result<ExitCode> {
    let ptr = pointer::parse(&args.pointer)?;
    super::options::modify(
        &args.file,
        &args.common,
        None,
        &args.print,
        quiet,
        format!("lockrun delete {}", args.pointer),
        |origin, doc: &Value| {
            let mut doc = doc.clone();
            match pointer::delete(origin, &mut doc, ptr) {
                Err(Error::Data(_)) if args.force => Ok(doc),
                other => other.map(|()| doc),
            }
        },
    )
}
