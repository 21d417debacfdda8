//! `lockrun write FILE < data`: replace FILE with stdin atomically, under the lock.

use std::io::Read;

use crate::cli::WriteArgs;
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;
use crate::json::edit;

pub(crate) fn run(args: &WriteArgs, quiet: bool) -> Result<ExitCode> {
    let mut data = Vec::new();
    std::io::stdin()
        .read_to_end(&mut data)
        .map_err(|e| Error::io("<stdin>", e))?;
    let mut opts =
        super::options::write_options(&args.common, quiet, "lockrun write".to_string(), None);
    opts.no_lock = args.no_lock;
    let outcome = edit::replace_bytes(&args.file, &opts, &data, args.json)?;
    if opts.dry_run {
        super::json_out::print_text(&outcome.text)?;
    }
    Ok(ExitCode::Success)
}
