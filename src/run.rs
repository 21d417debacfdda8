//! Dispatch: parse the command line, run the subcommand, and turn every error into one
//! line on stderr and its exit code (chosen by `Error::exit_code`). The only place that
//! ends in a process exit status.

use std::ffi::OsString;
use std::io::Write;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command};
#[cfg(any(unix, windows))]
use crate::cmd;
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;

/// Runs lockrun with `args` (program name first) and returns the process exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match parse(args.iter().cloned()) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version: stdout, coloured only as `color_choice` allows.
            let _ = e.print();
            return ExitCode::Success.code();
        }
        Err(e) => {
            // A usage error: "lockrun: <what>" like every other error, then one hint.
            let (what, hint) = crate::cli::usage::render(&e, &args);
            crate::quote::say(&what);
            eprintln!("{}", crate::quote::quote(&hint));
            return ExitCode::Usage.code();
        }
    };
    if let Command::With(with) = &cli.command
        && let Some(file) = with.stray_file(&args)
    {
        crate::quote::say(&format!(
            "with --name: {file:?} before '--' would be run as the command; with --name there is no FILE (lockrun with --name NAME -- COMMAND...)"
        ));
        return ExitCode::Usage.code();
    }
    if cli.verbose {
        crate::trace::enable();
    }
    match dispatch(&cli).map_err(|e| e.with_conflict_code(cli.command.conflict_exit_code())) {
        Ok(code) => code.code(),
        Err(e) => {
            crate::quote::say(&e.to_string());
            e.exit_code().code()
        }
    }
}

fn parse<I, T>(args: I) -> std::result::Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut command = Cli::command().color(color_choice());
    let matches = command.try_get_matches_from_mut(args)?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
}

/// Help is coloured only when stdout is a terminal and NO_COLOR is unset or empty
/// (clap's `Auto` alone would also colour a pipe under CLICOLOR_FORCE). Everything else
/// lockrun prints is plain text.
fn color_choice() -> clap::ColorChoice {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if no_color || !std::io::stdout().is_terminal() {
        clap::ColorChoice::Never
    } else {
        clap::ColorChoice::Auto
    }
}

#[cfg(any(unix, windows))]
fn dispatch(cli: &Cli) -> Result<ExitCode> {
    #[cfg(windows)]
    if let Some(backend) = backend_args(&cli.command) {
        backend.refuse_etcd()?;
    }
    match &cli.command {
        Command::With(args) => cmd::with::run(args, cli.quiet),
        // The JSON commands recurse once per nesting level of a document or a filter.
        Command::Update(args) => deep(|| cmd::update::run(args, cli.quiet)),
        Command::Set(args) => deep(|| cmd::pointer::set(args, cli.quiet)),
        Command::Get(args) => deep(|| cmd::read::get(args, cli.quiet)),
        Command::Delete(args) => deep(|| cmd::pointer::delete(args, cli.quiet)),
        Command::Patch(args) => deep(|| cmd::patch::run(args, cli.quiet)),
        Command::Append(args) => deep(|| cmd::append::run(args, cli.quiet)),
        Command::Read(args) => deep(|| cmd::read::read(args, cli.quiet)),
        Command::Write(args) => deep(|| cmd::write::run(args, cli.quiet)),
        Command::Man => man_page(),
        Command::Completions { shell } => completions(*shell),
        Command::Status(args) => cmd::status::run(args),
        Command::Show(args) => cmd::show::run(args, cli.quiet),
        Command::Cleanup(args) => cmd::cleanup::run(args, cli.quiet),
        Command::Unlock(args) => cmd::unlock::run(args, cli.quiet),
        Command::Acquire(args) => cmd::acquire::run(args, cli.quiet),
        Command::Release(args) => cmd::release::run(args, cli.quiet),
        #[cfg(unix)]
        Command::EtcdKeeper(args) => cmd::etcd_acquire::keeper(args),
        #[cfg(windows)]
        Command::EtcdKeeper(_) => Err(Error::usage(
            "etcd-keeper: the etcd backend is built on Unix only",
        )),
    }
}

/// The `--backend` options of a command that has them (every arm named, so that a new
/// command must say whether it takes a backend).
#[cfg(windows)]
fn backend_args(command: &Command) -> Option<&crate::cli::BackendArgs> {
    match command {
        Command::With(a) => Some(&a.lock.backend),
        Command::Update(a) => Some(&a.common.lock.backend),
        Command::Set(a) => Some(&a.common.lock.backend),
        Command::Get(a) => Some(&a.lock.backend),
        Command::Delete(a) => Some(&a.common.lock.backend),
        Command::Patch(a) => Some(&a.common.lock.backend),
        Command::Append(a) => Some(&a.lock.backend),
        Command::Read(a) => Some(&a.lock.backend),
        Command::Write(a) => Some(&a.common.lock.backend),
        Command::Status(a) => Some(&a.look.backend),
        Command::Unlock(a) => Some(&a.look.backend),
        Command::Acquire(a) => Some(&a.lock.backend),
        Command::Show(a) => Some(&a.backend),
        Command::Cleanup(a) => Some(&a.backend),
        Command::Release(a) => Some(&a.backend),
        Command::EtcdKeeper(a) => Some(&a.backend),
        Command::Man | Command::Completions { .. } => None,
    }
}

#[cfg(any(unix, windows))]
fn deep(f: impl FnOnce() -> Result<ExitCode> + Send) -> Result<ExitCode> {
    crate::json::stack::with_deep_stack(f)
}

/// Any system that is neither Unix nor Windows: the command line, `--help`, `--version`,
/// the man page and the completions work; everything that takes a lock says it cannot,
/// with the internal-error status 70.
#[cfg(not(any(unix, windows)))]
fn dispatch(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Man => man_page(),
        Command::Completions { shell } => completions(*shell),
        _ => Err(Error::Internal(
            "this platform is not supported (lockrun's locks need flock(2) or LockFileEx); only --help, --version, man and completions work here".into(),
        )),
    }
}

fn man_page() -> Result<ExitCode> {
    let page = crate::man::render()
        .map_err(|e| Error::Internal(format!("rendering the man page: {e}")))?;
    write_stdout(&page)
}

fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "lockrun", &mut out);
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("<stdout>", e))?;
    Ok(ExitCode::Success)
}
