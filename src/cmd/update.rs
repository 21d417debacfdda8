//! `lockrun update FILE FILTER`: a jq filter (embedded jaq) applied under the lock.

use crate::cli::UpdateArgs;
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::json::filter::{Args, Program};
use crate::json::{self as js};

pub(crate) fn run(args: &UpdateArgs, quiet: bool) -> Result<ExitCode> {
    let origin = js::display(&args.file);
    let mut named = Vec::new();
    for pair in args.arg.chunks(2) {
        if let [name, value] = pair {
            named.push((name.clone(), serde_json::Value::String(value.clone())));
        }
    }
    for pair in args.argjson.chunks(2) {
        if let [name, text] = pair {
            let value = js::parse(&format!("{origin}: --argjson {name}"), text.as_bytes())?;
            named.push((name.clone(), value));
        }
    }
    let program = Program::compile(&origin, &args.filter, &Args { named })?;
    let create = super::options::parse_create(&args.file, args.create.as_deref())?;
    super::options::modify(
        &args.file,
        &args.common,
        create,
        &args.print,
        quiet,
        format!("lockrun update {}", args.filter),
        |origin, doc: &jaq_json::Val| program.run_one(origin, doc),
    )
}
