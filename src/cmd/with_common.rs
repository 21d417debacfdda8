//! What `with` does the same way on every platform: splitting its words into FILE and
//! COMMAND, and the lock options they ask for. The running of the command differs (POSIX
//! process groups and signals in `with.rs`, a Job object in `with_windows.rs`).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::WithArgs;
use crate::error::{Error, Result};
use crate::lock::LockOptions;

/// `with`'s words, sorted out.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The file whose lock to take (empty with `--name`).
    pub(crate) file: PathBuf,
    /// The command and its arguments (never empty).
    pub(crate) argv: Vec<OsString>,
    /// How to take the lock, the command recorded as `COMMAND:`.
    pub(crate) opts: LockOptions,
}

pub(crate) fn plan(args: &WithArgs, quiet: bool) -> Result<Plan> {
    // With --name there is no FILE: clap gave the command's first word to FILE.
    let named = args.lock.backend.name.is_some();
    let (file, argv): (PathBuf, Vec<OsString>) = match &args.file {
        Some(first) if named => {
            let mut argv = vec![first.clone().into_os_string()];
            argv.extend(args.command.iter().cloned());
            (PathBuf::new(), argv)
        }
        Some(file) => (file.clone(), args.command.clone()),
        None => (PathBuf::new(), args.command.clone()),
    };
    if argv.is_empty() {
        return Err(Error::usage("with: no COMMAND to run"));
    }
    let mut opts = super::options::lock_options(&args.lock, quiet);
    opts.shared = args.shared;
    opts.command = Some(quote_command(&argv));
    Ok(Plan { file, argv, opts })
}

/// The command line as a shell would read it back, for `COMMAND:`.
fn quote_command(argv: &[OsString]) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
}
