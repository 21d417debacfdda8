//! Starting the command of `with`: like `posix_spawn` (a `CLONE_VM|CLONE_VFORK` child
//! that only resets its signal state and calls `execve`), plus the parent-death signal
//! that `posix_spawn` cannot set. A `fork` would copy lockrun's page tables and make
//! every later write fault; on a small VM that alone was 0.7 ms per run.

#[cfg(any(target_os = "linux", target_os = "android"))]
use std::ffi::CString;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

pub(crate) use crate::exit_code::ChildStatus;

/// A child started by [`spawn`]; it must be waited for with [`Child::try_wait`].
#[derive(Debug)]
pub(crate) struct Child {
    pid: libc::pid_t,
}

impl Child {
    pub(crate) fn id(&self) -> u32 {
        self.pid as u32
    }

    /// The child's status if it has ended (reaping it), `None` while it runs.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ChildStatus>> {
        let mut status: libc::c_int = 0;
        loop {
            // SAFETY: waitpid writes an int we own; `pid` is our own unreaped child.
            let rc = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if rc == 0 {
                return Ok(None);
            }
            if rc < 0 {
                let err = io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(err);
            }
            break;
        }
        if libc::WIFEXITED(status) {
            Ok(Some(ChildStatus::Exited(libc::WEXITSTATUS(status))))
        } else if libc::WIFSIGNALED(status) {
            Ok(Some(ChildStatus::Signaled(libc::WTERMSIG(status))))
        } else {
            Ok(None)
        }
    }
}

/// Finds `program` as `execvp` would: a name with a slash is used as is, others are
/// looked up in `$PATH`. A name found only without execute permission is an error of
/// kind `PermissionDenied` (exit 126), a name found nowhere `NotFound` (127).
pub(crate) fn resolve_program(program: &OsStr) -> io::Result<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    if program.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "empty command name",
        ));
    }
    let path =
        std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    let mut denied = false;
    for dir in std::env::split_paths(&path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(program);
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() => {
                if is_executable(&candidate) {
                    return Ok(candidate);
                }
                denied = true;
            }
            _ => {}
        }
    }
    if denied {
        Err(io::Error::from(io::ErrorKind::PermissionDenied))
    } else {
        Err(io::Error::from(io::ErrorKind::NotFound))
    }
}

fn is_executable(path: &Path) -> bool {
    let Ok(c) = super::c_path(path) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "argument contains a NUL byte"))
}

/// Everything the child needs, prepared by the parent: the child allocates nothing.
#[cfg(any(target_os = "linux", target_os = "android"))]
struct ChildArgs {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    /// `sh PATH ARGS...`, for a file without `#!` (execvp's ENOEXEC fallback).
    sh_argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    parent: libc::pid_t,
    die_with_parent: bool,
    /// Set by the child when it cannot exec.
    errno: libc::c_int,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const CHILD_STACK: usize = 64 * 1024;

#[cfg(any(target_os = "linux", target_os = "android"))]
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points to the parent's ChildArgs, which outlives this child's use of
    // it (CLONE_VFORK suspends the parent until we exec or exit). Only async-signal-safe
    // calls follow, on pointers prepared by the parent.
    unsafe {
        let args = &mut *(arg as *mut ChildArgs);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // Rust ignores SIGPIPE; a command must start with the default.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        if args.die_with_parent {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                args.errno = *libc::__errno_location();
                libc::_exit(127);
            }
            // lockrun may have died before prctl: then nobody would stop us.
            if libc::getppid() != args.parent {
                args.errno = libc::ESRCH;
                libc::_exit(127);
            }
        }
        libc::execve(args.path, args.argv, args.envp);
        let mut err = *libc::__errno_location();
        if err == libc::ENOEXEC {
            libc::execve(c"/bin/sh".as_ptr(), args.sh_argv, args.envp);
            err = *libc::__errno_location();
        }
        args.errno = err;
        libc::_exit(127)
    }
}

/// Elsewhere: std's spawn (no parent-death signal there), waited for by PID.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn spawn(program: &OsStr, args: &[OsString]) -> io::Result<Child> {
    let path = resolve_program(program)?;
    let child = std::process::Command::new(path).args(args).spawn()?;
    Ok(Child {
        pid: child.id() as libc::pid_t,
    })
}

/// Starts `program` with `args` (argv[0] is `program` as given) and this process's
/// environment; on Linux the child is SIGKILLed when lockrun dies.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn spawn(program: &OsStr, args: &[OsString]) -> io::Result<Child> {
    let path = resolve_program(program)?;
    let path_c = c_string(path.as_os_str().as_bytes())?;
    let mut argv_c = vec![c_string(program.as_bytes())?];
    for a in args {
        argv_c.push(c_string(a.as_bytes())?);
    }
    let mut sh_c = vec![c_string(b"sh")?, path_c.clone()];
    sh_c.extend(argv_c.iter().skip(1).cloned());
    let env_c: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            c_string(&kv)
        })
        .collect::<io::Result<_>>()?;
    let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let argv = ptrs(&argv_c);
    let sh_argv = ptrs(&sh_c);
    let envp = ptrs(&env_c);
    let mut child_args = ChildArgs {
        path: path_c.as_ptr(),
        argv: argv.as_ptr(),
        sh_argv: sh_argv.as_ptr(),
        envp: envp.as_ptr(),
        // SAFETY: getpid has no preconditions.
        parent: unsafe { libc::getpid() },
        die_with_parent: true,
        errno: 0,
    };
    let mut stack = vec![0u8; CHILD_STACK];
    // Stacks grow down on every platform we build for; keep the top 16-byte aligned.
    let top = (stack.as_mut_ptr() as usize + CHILD_STACK) & !15;
    // SAFETY: the child runs `child_main` on `stack` (alive until clone returns, which
    // CLONE_VFORK delays until the child has exec'd or exited) with a pointer to
    // `child_args`, which also outlives it. SIGCHLD makes it an ordinary child.
    let pid = unsafe {
        libc::clone(
            child_main,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &mut child_args as *mut ChildArgs as *mut libc::c_void,
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut child = Child { pid };
    if child_args.errno != 0 {
        // The child could not exec and has exited: reap it, report why.
        while child.try_wait()?.is_none() {
            std::thread::yield_now();
        }
        return Err(io::Error::from_raw_os_error(child_args.errno));
    }
    Ok(child)
}
