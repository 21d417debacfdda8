//! Command-line arguments of the JSON subcommands (update, set, get, delete, patch,
//! append, read, write). Doc comments here are the `--help` text and the man page.

use std::path::PathBuf;

use clap::{ArgAction, Args};

use super::LockArgs;
use crate::json::backup::BackupKind;

// Options of every command that replaces a JSON file (a plain comment: see LockArgs).
#[derive(Debug, Clone, Args)]
pub(crate) struct WriteCommon {
    #[command(flatten)]
    pub(crate) lock: LockArgs,

    /// Save the old file first: simple (FILE~) or numbered (FILE.~N~), GNU style.
    #[arg(
        long,
        value_name = "CONTROL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "simple"
    )]
    pub(crate) backup: Option<BackupKind>,

    /// Keep only the newest N numbered backups (implies --backup=numbered).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) backup_keep: Option<u64>,

    /// Refuse a result that does not validate against this JSON Schema (every
    /// violation is listed with its pointer).
    #[arg(long, value_name = "SCHEMA")]
    pub(crate) schema: Option<PathBuf>,

    /// Compute and print the new document, but write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

// --create and --print, declared once for the commands that compute a new document from
// the old one (set, patch; update says more of --create; delete has no --create, update
// and delete have --print). Plain comments: see LockArgs.
#[derive(Debug, Clone, Args)]
pub(crate) struct CreateArg {
    /// Start from this document when FILE does not exist.
    #[arg(long, value_name = "JSON")]
    pub(crate) create: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct PrintArg {
    /// Print the new document on stdout.
    #[arg(short, long)]
    pub(crate) print: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct UpdateArgs {
    #[command(flatten)]
    pub(crate) common: WriteCommon,

    /// Bind $NAME to the string VALUE (repeatable).
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "VALUE"], action = ArgAction::Append)]
    pub(crate) arg: Vec<String>,

    /// Bind $NAME to the JSON value JSON (repeatable).
    #[arg(long = "argjson", num_args = 2, value_names = ["NAME", "JSON"], action = ArgAction::Append)]
    pub(crate) argjson: Vec<String>,

    /// Start from this document when FILE does not exist (default: a missing FILE is an
    /// error, exit 66).
    #[arg(long, value_name = "JSON")]
    pub(crate) create: Option<String>,

    #[command(flatten)]
    pub(crate) print: PrintArg,

    /// The JSON file to update.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,

    /// The jq filter; it must yield exactly one value.
    #[arg(value_name = "FILTER", allow_hyphen_values = true)]
    pub(crate) filter: String,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct SetArgs {
    #[command(flatten)]
    pub(crate) common: WriteCommon,

    /// VALUE is a plain string, not JSON.
    #[arg(long)]
    pub(crate) string: bool,

    #[command(flatten)]
    pub(crate) create: CreateArg,

    #[command(flatten)]
    pub(crate) print: PrintArg,

    /// The JSON file.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,

    /// RFC 6901 JSON Pointer, e.g. /sessions/0/id ("-" as last token appends to an array;
    /// missing objects on the way are created).
    #[arg(value_name = "POINTER", allow_hyphen_values = true)]
    pub(crate) pointer: String,

    /// The value: JSON, or any text with --string.
    #[arg(value_name = "VALUE", allow_hyphen_values = true)]
    pub(crate) value: String,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct DeleteArgs {
    #[command(flatten)]
    pub(crate) common: WriteCommon,

    /// A pointer that names nothing is not an error (nothing is written).
    #[arg(short, long)]
    pub(crate) force: bool,

    #[command(flatten)]
    pub(crate) print: PrintArg,

    /// The JSON file.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,

    /// RFC 6901 JSON Pointer of the value to remove.
    #[arg(value_name = "POINTER", allow_hyphen_values = true)]
    pub(crate) pointer: String,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct PatchArgs {
    #[command(flatten)]
    pub(crate) common: WriteCommon,

    /// PATCH is an RFC 7396 JSON Merge Patch instead of an RFC 6902 JSON Patch.
    #[arg(long)]
    pub(crate) merge: bool,

    #[command(flatten)]
    pub(crate) create: CreateArg,

    #[command(flatten)]
    pub(crate) print: PrintArg,

    /// The JSON file.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,

    /// File holding the patch, or - for stdin.
    #[arg(value_name = "PATCH", allow_hyphen_values = true)]
    pub(crate) patch: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct AppendArgs {
    #[command(flatten)]
    pub(crate) lock: LockArgs,

    /// Refuse a value that does not validate against this JSON Schema.
    #[arg(long, value_name = "SCHEMA")]
    pub(crate) schema: Option<PathBuf>,

    /// Print the line that would be appended, but write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// The JSON Lines file (created if missing).
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,

    /// One JSON value; it is written as one compact line.
    #[arg(value_name = "JSON", allow_hyphen_values = true)]
    pub(crate) json: String,
}

// How `read` and `get` print (a plain comment: see LockArgs).
#[derive(Debug, Clone, Args)]
pub(crate) struct ViewArgs {
    /// Print a string result without quotes (as jq -r).
    #[arg(short, long)]
    pub(crate) raw: bool,

    /// Print on one line (as jq -c).
    #[arg(short, long)]
    pub(crate) compact: bool,

    /// Read without taking the shared lock (atomic replacement already makes a lone read
    /// consistent).
    #[arg(long)]
    pub(crate) no_lock: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ReadArgs {
    #[command(flatten)]
    pub(crate) lock: LockArgs,

    #[command(flatten)]
    pub(crate) view: ViewArgs,

    /// The JSON file.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,

    /// RFC 6901 JSON Pointer of the part to print (default: the whole document, as
    /// stored).
    #[arg(value_name = "POINTER", allow_hyphen_values = true)]
    pub(crate) pointer: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct GetArgs {
    #[command(flatten)]
    pub(crate) lock: LockArgs,

    #[command(flatten)]
    pub(crate) view: ViewArgs,

    /// The JSON file.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,

    /// RFC 6901 JSON Pointer, e.g. /sessions/0/id.
    #[arg(value_name = "POINTER", allow_hyphen_values = true)]
    pub(crate) pointer: String,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct WriteArgs {
    #[command(flatten)]
    pub(crate) common: WriteCommon,

    /// Refuse data that is not one JSON document.
    #[arg(long)]
    pub(crate) json: bool,

    /// Write without taking the lock.
    #[arg(long)]
    pub(crate) no_lock: bool,

    /// The file to replace with stdin.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
}

/// `--backup[=CONTROL]`'s values: the engine's backup kinds, named for the command line
/// here so that `json/` knows nothing of clap.
impl clap::ValueEnum for BackupKind {
    fn value_variants<'a>() -> &'a [Self] {
        &[BackupKind::Simple, BackupKind::Numbered]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(match self {
            BackupKind::Simple => {
                clap::builder::PossibleValue::new("simple").help("`FILE~`, replaced each time")
            }
            BackupKind::Numbered => clap::builder::PossibleValue::new("numbered")
                .help("`FILE.~1~`, `FILE.~2~`, ... one per change"),
        })
    }
}
