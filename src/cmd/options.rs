//! The translation from command-line arguments (`crate::cli`) to the engines' options:
//! the one place where clap's types meet `lock::LockOptions` and `json::edit`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::cli::{LockArgs, PrintArg, WriteCommon};
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::json::edit::{self, Doc, WriteOptions};
use crate::lock::LockOptions;

/// After this long a waiter says, once, what it is waiting for.
const WAIT_NOTICE_AFTER: Duration = Duration::from_secs(1);

/// Lock options from the command line's lock arguments.
pub(crate) fn lock_options(args: &LockArgs, quiet: bool) -> LockOptions {
    // A file a virus scanner or an indexer holds for a moment is waited for as long as
    // a busy lock would be.
    #[cfg(windows)]
    crate::sys::replace::set_sharing_patience(args.wait());
    LockOptions {
        timeout: args.wait(),
        lock_dir: args.dir.lock_dir.clone(),
        label: args.label.clone(),
        stale_after: args.stale_after,
        notice_after: if quiet { None } else { Some(WAIT_NOTICE_AFTER) },
        name: args.backend.name.clone(),
        #[cfg(unix)]
        etcd: args.backend.etcd(),
        ..LockOptions::default()
    }
}

/// The write options `args` ask for (`create`: the parsed `--create`).
pub(crate) fn write_options(
    args: &WriteCommon,
    quiet: bool,
    command: String,
    create: Option<Value>,
) -> WriteOptions {
    let mut lock = lock_options(&args.lock, quiet);
    lock.command = Some(command);
    WriteOptions {
        lock,
        no_lock: false,
        backup: args.backup,
        backup_keep: args
            .backup_keep
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        schema: args.schema.clone(),
        dry_run: args.dry_run,
        print: false,
        create,
    }
}

/// Parses `--create JSON`.
pub(crate) fn parse_create(file: &Path, create: Option<&str>) -> Result<Option<Value>> {
    let origin = format!("{}: --create", file.display());
    create
        .map(|text| crate::json::parse(&origin, text.as_bytes()))
        .transpose()
}

/// The read-modify-write of update, set, delete and patch: `compute` makes the new
/// document under FILE's lock (from `create`, the parsed --create, when FILE is
/// missing), and the result is printed with --print or --dry-run. `command` is what the
/// lock records.
pub(crate) fn modify<D: Doc>(
    file: &Path,
    common: &WriteCommon,
    create: Option<Value>,
    print: &PrintArg,
    quiet: bool,
    command: String,
    compute: impl FnOnce(&str, &D) -> Result<D>,
) -> Result<ExitCode> {
    let mut opts = write_options(common, quiet, command, create);
    opts.print = print.print;
    let outcome = edit::modify(file, &opts, compute)?;
    if opts.print || opts.dry_run {
        super::json_out::print_text(&outcome.text)?;
    }
    Ok(ExitCode::Success)
}
