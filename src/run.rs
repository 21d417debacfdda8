//! Dispatch: parse the command line, run the subcommand, and turn every error into one
//! line on stderr and its exit code. The only place that decides how lockrun exits.

use std::ffi::OsString;
use std::io::Write;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
#[cfg(unix)]
use crate::cmd;
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;

/// Runs lockrun with `args` (program name first) and returns the process exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::Usage.code()
            } else {
                ExitCode::Success.code()
            };
        }
    };
    if cli.verbose {
        crate::trace::enable();
    }
    match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lockrun: {e}");
            e.code()
        }
    }
}

#[cfg(unix)]
fn dispatch(cli: &Cli) -> Result<i32> {
    match &cli.command {
        Command::With(args) => cmd::with::run(args, cli.quiet),
        Command::Update(args) => cmd::update::run(args, cli.quiet),
        Command::Set(args) => cmd::pointer::set(args, cli.quiet),
        Command::Get(args) => cmd::read::get(args, cli.quiet),
        Command::Delete(args) => cmd::pointer::delete(args, cli.quiet),
        Command::Patch(args) => cmd::patch::run(args, cli.quiet),
        Command::Append(args) => cmd::append::run(args, cli.quiet),
        Command::Read(args) => cmd::read::read(args, cli.quiet),
        Command::Write(args) => cmd::write::run(args, cli.quiet),
        Command::Man => man_page(),
        Command::Completions { shell } => completions(*shell),
        Command::Status(args) => cmd::status::run(args),
        Command::Show(args) => cmd::show::run(args, cli.quiet),
        Command::Cleanup(args) => cmd::cleanup::run(args, cli.quiet),
        Command::Unlock(args) => cmd::unlock::run(args, cli.quiet),
        Command::Acquire(args) => cmd::acquire::run(args, cli.quiet),
        Command::Release(args) => cmd::release::run(args, cli.quiet),
    }
}

/// Windows (and any non-Unix system): the command line, `--help`, `--version`, the man
/// page and the completions work; everything that takes a lock says it cannot, with the
/// internal-error status 70 (the lock engine needs flock(2) and POSIX signals).
#[cfg(not(unix))]
fn dispatch(cli: &Cli) -> Result<i32> {
    match &cli.command {
        Command::Man => man_page(),
        Command::Completions { shell } => completions(*shell),
        _ => Err(Error::Internal(format!(
            "{} is not supported yet (lockrun's locks need flock(2) and POSIX signals; use WSL); only --help, --version, man and completions work here",
            if cfg!(windows) {
                "Windows"
            } else {
                "this platform"
            }
        ))),
    }
}

fn man_page() -> Result<i32> {
    let page = crate::man::render()
        .map_err(|e| Error::Internal(format!("rendering the man page: {e}")))?;
    write_stdout(&page)
}

fn completions(shell: clap_complete::Shell) -> Result<i32> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "lockrun", &mut out);
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("<stdout>", e))?;
    Ok(ExitCode::Success.code())
}
