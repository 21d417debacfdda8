//! `lockrun patch FILE PATCH|-`: RFC 6902 JSON Patch (all or nothing) or, with
//! `--merge`, RFC 7396 JSON Merge Patch, under the lock.

use std::io::Read;
use std::path::Path;

use crate::cli::PatchArgs;
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;
use crate::json as js;

pub(crate) fn run(args: &PatchArgs, quiet: bool) -> Result<ExitCode> {
    let (shown, bytes) = if args.patch == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("<stdin>", e))?;
        ("<stdin>".to_string(), buf)
    } else {
        let bytes = std::fs::read(&args.patch).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Missing {
                path: args.patch.clone(),
            },
            _ => Error::io(&args.patch, e),
        })?;
        (js::display(&args.patch), bytes)
    };
    let origin = js::display(&args.file);
    let patch_doc = js::parse(&format!("{origin}: patch {shown}"), &bytes)?;
    let create = super::options::parse_create(&args.file, args.create.create.as_deref())?;
    // An RFC 6902 patch is checked before the lock is taken; a merge patch is any JSON.
    let patch = if args.merge {
        Patch::Merge(patch_doc)
    } else {
        Patch::Json(serde_json::from_value(patch_doc).map_err(|e| {
            Error::data(format!(
                "{origin}: patch {shown} is not an RFC 6902 JSON Patch: {e}"
            ))
        })?)
    };
    super::options::modify(
        &args.file,
        &args.common,
        create,
        &args.print,
        quiet,
        format!("lockrun patch {shown}"),
        |origin, doc: &serde_json::Value| {
            let mut doc = doc.clone();
            match &patch {
                Patch::Merge(merge) => json_patch::merge(&mut doc, merge),
                Patch::Json(patch) => json_patch::patch(&mut doc, patch).map_err(|e| {
                    Error::data(format!(
                        "{origin}: patch {shown} failed at operation {} ({}): {} (nothing written)",
                        e.operation, e.path, e.kind
                    ))
                })?,
            }
            Ok(doc)
        },
    )
}

enum Patch {
    Merge(serde_json::Value),
    Json(json_patch::Patch),
}
