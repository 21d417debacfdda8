//! Usage errors in lockrun's words: `lockrun: <what is wrong>` and at most one hint line
//! (`see 'lockrun update --help'`), instead of clap's three to thirty lines. A value that
//! came from `LOCKRUN_TIMEOUT` or `LOCKRUN_DIR` is blamed on the variable, not on the
//! option the user did not type.

use std::ffi::OsString;

/// The two lines (the second may be empty) for a clap error met parsing `args`.
pub fn render(e: &clap::Error, args: &[OsString]) -> (String, String) {
    use clap::error::ErrorKind;
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let command = command_path(text, args);
    let hint = format!("see '{command} --help'");
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand
    ) {
        return (format!("no command given to {command}"), hint);
    }
    // The sentence: every line up to the first blank one (a list of missing arguments,
    // the possible values), joined; tips and usage dropped.
    let what = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let what = what.replace(
        "arguments were not provided: ",
        "arguments were not given: ",
    );
    (from_env(&what, args).unwrap_or(what), hint)
}

/// `lockrun update`: the subcommand given, else the one clap's `Usage:` line names.
fn command_path(text: &str, args: &[OsString]) -> String {
    use clap::CommandFactory;
    let cli = crate::cli::Cli::command();
    let given = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy())
        .find(|a| !a.starts_with('-'))
        .and_then(|a| {
            cli.find_subcommand(a.as_ref())
                .map(|c| c.get_name().to_string())
        });
    if let Some(name) = given {
        return format!("lockrun {name}");
    }
    let usage = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .unwrap_or("lockrun");
    let words: Vec<&str> = usage
        .split_whitespace()
        .take_while(|w| !w.starts_with(['[', '<', '-']))
        .collect();
    if words.is_empty() {
        "lockrun".into()
    } else {
        words.join(" ")
    }
}

/// The message about a value taken from an environment variable, when the option it
/// stands for was not given on the command line.
fn from_env(what: &str, args: &[OsString]) -> Option<String> {
    for (var, long, short, shown) in [
        (
            "LOCKRUN_TIMEOUT",
            "--timeout",
            Some('w'),
            "'--timeout <SECS>'",
        ),
        ("LOCKRUN_DIR", "--lock-dir", None, "'--lock-dir <DIR>'"),
    ] {
        if !what.contains(shown) || given(args, long, short) {
            continue;
        }
        let value = std::env::var_os(var)?;
        if value.is_empty() {
            return Some(format!(
                "{var} is set but empty (unset it, or give it a value)"
            ));
        }
        let why = what
            .split_once(&format!("{shown}: "))
            .map_or(what, |(_, why)| why);
        return Some(format!("{var}: {why}"));
    }
    None
}

/// Whether the option `long` (or its `short` letter) is on the command line before `--`.
fn given(args: &[OsString], long: &str, short: Option<char>) -> bool {
    args.iter()
        .skip(1)
        .map(|a| a.to_string_lossy())
        .take_while(|a| a != "--")
        .any(|a| {
            a == long
                || a.starts_with(&format!("{long}="))
                || short.is_some_and(|c| {
                    a.starts_with('-') && !a.starts_with("--") && a[1..].contains(c)
                })
        })
}
