//! Command-line arguments of the JSON subcommands (update, set, get, delete, patch,
//! append, read, write). Doc comments here are the `--help` text and the man page.

use std::path::PathBuf;

use clap::{ArgAction, Args};

use crate::cli::LockArgs;
use crate::json::backup::BackupKind;

// Options of every command that replaces a JSON file (a plain comment: see LockArgs).
#[derive(Debug, Clone, Args)]
pub struct WriteCommon {
    #[command(flatten)]
    pub lock: LockArgs,

    /// Save the old file first: simple (FILE~) or numbered (FILE.~N~), GNU style.
    #[arg(
        long,
        value_name = "CONTROL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "simple"
    )]
    pub backup: Option<BackupKind>,

    /// Keep only the newest N numbered backups (implies --backup=numbered).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub backup_keep: Option<u64>,

    /// Refuse a result that does not validate against this JSON Schema (every
    /// violation is listed with its pointer).
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Option<PathBuf>,

    /// Compute and print the new document, but write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub common: WriteCommon,

    /// Bind $NAME to the string VALUE (repeatable).
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "VALUE"], action = ArgAction::Append)]
    pub arg: Vec<String>,

    /// Bind $NAME to the JSON value JSON (repeatable).
    #[arg(long = "argjson", num_args = 2, value_names = ["NAME", "JSON"], action = ArgAction::Append)]
    pub argjson: Vec<String>,

    /// Start from this document when FILE does not exist (default: a missing FILE is an
    /// error, exit 66).
    #[arg(long, value_name = "JSON")]
    pub create: Option<String>,

    /// Print the new document on stdout.
    #[arg(short, long)]
    pub print: bool,

    /// The JSON file to update.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The jq filter; it must yield exactly one value.
    #[arg(value_name = "FILTER", allow_hyphen_values = true)]
    pub filter: String,
}

#[derive(Debug, Clone, Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub common: WriteCommon,

    /// VALUE is a plain string, not JSON.
    #[arg(long)]
    pub string: bool,

    /// Start from this document when FILE does not exist.
    #[arg(long, value_name = "JSON")]
    pub create: Option<String>,

    /// Print the new document on stdout.
    #[arg(short, long)]
    pub print: bool,

    /// The JSON file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// RFC 6901 JSON Pointer, e.g. /sessions/0/id ("-" as last token appends to an array;
    /// missing objects on the way are created).
    #[arg(value_name = "POINTER", allow_hyphen_values = true)]
    pub pointer: String,

    /// The value: JSON, or any text with --string.
    #[arg(value_name = "VALUE", allow_hyphen_values = true)]
    pub value: String,
}

#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub common: WriteCommon,

    /// A pointer that names nothing is not an error (nothing is written).
    #[arg(short, long)]
    pub force: bool,

    /// Print the new document on stdout.
    #[arg(short, long)]
    pub print: bool,

    /// The JSON file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// RFC 6901 JSON Pointer of the value to remove.
    #[arg(value_name = "POINTER", allow_hyphen_values = true)]
    pub pointer: String,
}

#[derive(Debug, Clone, Args)]
pub struct PatchArgs {
    #[command(flatten)]
    pub common: WriteCommon,

    /// PATCH is an RFC 7396 JSON Merge Patch instead of an RFC 6902 JSON Patch.
    #[arg(long)]
    pub merge: bool,

    /// Start from this document when FILE does not exist.
    #[arg(long, value_name = "JSON")]
    pub create: Option<String>,

    /// Print the new document on stdout.
    #[arg(short, long)]
    pub print: bool,

    /// The JSON file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// File holding the patch, or - for stdin.
    #[arg(value_name = "PATCH", allow_hyphen_values = true)]
    pub patch: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct AppendArgs {
    #[command(flatten)]
    pub lock: LockArgs,

    /// Refuse a value that does not validate against this JSON Schema.
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Option<PathBuf>,

    /// Print the line that would be appended, but write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// The JSON Lines file (created if missing).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// One JSON value; it is written as one compact line.
    #[arg(value_name = "JSON", allow_hyphen_values = true)]
    pub json: String,
}

// How `read` and `get` print (a plain comment: see LockArgs).
#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// Print a string result without quotes (as jq -r).
    #[arg(short, long)]
    pub raw: bool,

    /// Print on one line (as jq -c).
    #[arg(short, long)]
    pub compact: bool,

    /// Read without taking the shared lock (atomic replacement already makes a lone read
    /// consistent).
    #[arg(long)]
    pub no_lock: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub view: ViewArgs,

    /// The JSON file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// RFC 6901 JSON Pointer of the part to print (default: the whole document, as
    /// stored).
    #[arg(value_name = "POINTER", allow_hyphen_values = true)]
    pub pointer: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub view: ViewArgs,

    /// The JSON file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// RFC 6901 JSON Pointer, e.g. /sessions/0/id.
    #[arg(value_name = "POINTER", allow_hyphen_values = true)]
    pub pointer: String,
}

#[derive(Debug, Clone, Args)]
pub struct WriteArgs {
    #[command(flatten)]
    pub common: WriteCommon,

    /// Refuse data that is not one JSON document.
    #[arg(long)]
    pub json: bool,

    /// Write without taking the lock.
    #[arg(long)]
    pub no_lock: bool,

    /// The file to replace with stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[cfg(unix)]
impl WriteCommon {
    /// The write options these arguments ask for (`create`: the parsed `--create`).
    pub fn options(
        &self,
        quiet: bool,
        command: String,
        create: Option<serde_json::Value>,
    ) -> crate::json::edit::WriteOptions {
        let mut lock = crate::cmd::lock_options(&self.lock, quiet);
        lock.command = Some(command);
        crate::json::edit::WriteOptions {
            lock,
            no_lock: false,
            backup: self.backup,
            backup_keep: self
                .backup_keep
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            schema: self.schema.clone(),
            dry_run: self.dry_run,
            print: false,
            create,
        }
    }
}

/// Parses `--create JSON`.
pub fn parse_create(
    file: &std::path::Path,
    create: Option<&str>,
) -> crate::error::Result<Option<serde_json::Value>> {
    let origin = format!("{}: --create", file.display());
    create
        .map(|text| crate::json::parse(&origin, text.as_bytes()))
        .transpose()
}
