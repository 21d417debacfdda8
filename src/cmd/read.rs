//! `lockrun read FILE [POINTER]` and `lockrun get FILE POINTER`: print a JSON file or a
//! part of it, under a shared lock (unless `--no-lock`).

use std::path::Path;

use crate::cli::LockArgs;
use crate::cli::{GetArgs, ReadArgs, ViewArgs};
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;
use crate::json::file::{read_file, take_lock};
use crate::json::{self as js, pointer};

pub(crate) fn read(args: &ReadArgs, quiet: bool) -> Result<ExitCode> {
    run(
        &args.file,
        args.pointer.as_deref(),
        &args.lock,
        &args.view,
        quiet,
    )
}

pub(crate) fn get(args: &GetArgs, quiet: bool) -> Result<ExitCode> {
    run(
        &args.file,
        Some(&args.pointer),
        &args.lock,
        &args.view,
        quiet,
    )
}

fn run(
    file: &Path,
    ptr: Option<&str>,
    lock: &LockArgs,
    view: &ViewArgs,
    quiet: bool,
) -> Result<ExitCode> {
    let origin = js::display(file);
    let ptr = ptr.map(pointer::parse).transpose()?;
    let mut opts = super::options::lock_options(lock, quiet);
    opts.shared = true;
    opts.command = Some("lockrun read".into());
    let guard = take_lock(file, &opts, view.no_lock)?;
    let current = read_file(file);
    if let Some(g) = guard {
        g.release()?;
    }
    let bytes = current?
        .ok_or_else(|| Error::Missing {
            path: file.to_path_buf(),
        })?
        .bytes;
    let doc = js::parse(&origin, &bytes)?;
    let text = match ptr {
        // The whole document as stored, unless asked to reformat.
        None if !view.compact && !view.raw => String::from_utf8_lossy(&bytes).into_owned(),
        None => super::json_out::render_value(&doc, view.raw, view.compact),
        Some(p) => {
            super::json_out::render_value(pointer::get(&origin, &doc, p)?, view.raw, view.compact)
        }
    };
    super::json_out::print_text(&text)?;
    Ok(ExitCode::Success)
}
