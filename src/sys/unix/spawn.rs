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

/// How the command starts: in a process group of its own (so that every signal
/// reaches its whole tree), and in the foreground of lockrun's terminal.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SpawnOptions<'a> {
    pub(crate) own_group: bool,
    /// A terminal descriptor whose foreground group the command's group becomes.
    pub(crate) terminal: Option<i32>,
    /// Linux: the lock's `info` (or reader gate) descriptor, to which the child appends
    /// its own `CHILD:`, `CHILD_START:` and `CHILD_PGID:` lines before it execs, so that
    /// a taker knows the group even if lockrun is killed the instant after the spawn.
    pub(crate) record_fd: Option<i32>,
    /// Variables added to lockrun's environment for the command (replacing any of the
    /// same name): the etcd backend's fencing token.
    pub(crate) env: &'a [(&'a str, String)],
}

#[cfg(any(target_os = "linux", target_os = "android"))]
/// Longest `/proc/self/stat` the child reads (the command name is at most 16 bytes; the
/// whole line is well under 400).
const STAT_BUF: usize = 1024;
#[cfg(any(target_os = "linux", target_os = "android"))]
/// Room for the child's record lines (two PIDs, a start time and a boot id).
const RECORD_BUF: usize = 256;

#[cfg(any(target_os = "linux", target_os = "android"))]
/// The child's record, `CHILD: P\nCHILD_START: T@BOOT\nCHILD_PGID: P\n`, built from its
/// PID and its `/proc/self/stat` (T is field 22, the start time): written into `out`
/// without allocating (it runs between clone and exec). Returns the length used.
pub(crate) fn format_child_record(
    pid: u32,
    stat: &[u8],
    boot: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    // Fields after the command name: state is field 3, the start time field 22.
    let start = stat
        .get(close + 1..)?
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .nth(19)?;
    if start.is_empty() || !start.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut digits = [0u8; 10];
    let mut n = pid;
    let mut len = 0;
    loop {
        digits[digits.len() - 1 - len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let pid_text = &digits[digits.len() - len..];
    let parts: [&[u8]; 9] = [
        b"CHILD: ",
        pid_text,
        b"\nCHILD_START: ",
        start,
        b"@",
        boot,
        b"\nCHILD_PGID: ",
        pid_text,
        b"\n",
    ];
    let mut at = 0;
    for part in parts {
        let end = at + part.len();
        out.get_mut(at..end)?.copy_from_slice(part);
        at = end;
    }
    Some(at)
}

/// A child started by [`spawn`]; it must be waited for with [`Child::try_wait`].
#[derive(Debug)]
pub(crate) struct Child {
    pid: libc::pid_t,
    recorded: bool,
}

impl Child {
    pub(crate) fn id(&self) -> u32 {
        self.pid as u32
    }

    /// True when the child wrote its own record to `SpawnOptions::record_fd`.
    pub(crate) fn recorded(&self) -> bool {
        self.recorded
    }

    /// The child's status if it has ended (reaping it) or stopped, `None` while it runs.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ChildStatus>> {
        let mut status: libc::c_int = 0;
        loop {
            // SAFETY: waitpid writes an int we own; `pid` is our own unreaped child.
            let rc =
                unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG | libc::WUNTRACED) };
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
        } else if libc::WIFSTOPPED(status) {
            Ok(Some(ChildStatus::Stopped(libc::WSTOPSIG(status))))
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
    own_group: bool,
    /// Terminal to make the child's group the foreground of, or -1.
    terminal: libc::c_int,
    /// Where the child records itself (see `SpawnOptions::record_fd`), or -1.
    record_fd: libc::c_int,
    boot: *const u8,
    boot_len: usize,
    stat_buf: *mut u8,
    record_buf: *mut u8,
    /// Set by the child once its record is written in full.
    recorded: bool,
    /// Set by the child when it cannot exec.
    errno: libc::c_int,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const CHILD_STACK: usize = 64 * 1024;

/// The calling thread's `errno` (glibc and musl name its accessor `__errno_location`,
/// Bionic `__errno`). Async-signal-safe: a plain thread-local address.
#[cfg(target_os = "linux")]
unsafe fn errno() -> *mut libc::c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__errno_location() }
}

#[cfg(target_os = "android")]
unsafe fn errno() -> *mut libc::c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__errno() }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points to the parent's ChildArgs, which outlives this child's use of
    // it (CLONE_VFORK suspends the parent until we exec or exit). Only async-signal-safe
    // calls follow, on pointers prepared by the parent.
    unsafe {
        let args = &mut *(arg as *mut ChildArgs);
        if args.own_group {
            if libc::setpgid(0, 0) != 0 {
                args.errno = *errno();
                libc::_exit(127);
            }
            if args.terminal >= 0 {
                // Now in a background group: tcsetpgrp would stop us with SIGTTOU.
                let mut ttou: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut ttou);
                libc::sigaddset(&mut ttou, libc::SIGTTOU);
                libc::sigprocmask(libc::SIG_BLOCK, &ttou, std::ptr::null_mut());
                // Done here, before exec, so the command never reads the terminal from
                // the background. A failure leaves it in the background: not fatal.
                libc::tcsetpgrp(args.terminal, libc::getpid());
            }
            if args.record_fd >= 0 {
                record_self(args);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // Rust ignores SIGPIPE; a command must start with the default.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        if args.die_with_parent {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                args.errno = *errno();
                libc::_exit(127);
            }
            // lockrun may have died before prctl: then nobody would stop us.
            if libc::getppid() != args.parent {
                args.errno = libc::ESRCH;
                libc::_exit(127);
            }
        }
        libc::execve(args.path, args.argv, args.envp);
        let mut err = *errno();
        if err == libc::ENOEXEC {
            libc::execve(c"/bin/sh".as_ptr(), args.sh_argv, args.envp);
            err = *errno();
        }
        args.errno = err;
        libc::_exit(127)
    }
}

/// Appends the child's record to `args.record_fd`, in the child before exec. Only
/// open/read/close/write on buffers the parent prepared: nothing allocates.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn record_self(args: &mut ChildArgs) {
    // SAFETY: runs in the vfork child; the buffers and the boot id were allocated by the
    // parent with these lengths and outlive the child's use of them; the libc calls are
    // async-signal-safe and write only into those buffers.
    unsafe {
        let fd = libc::open(
            c"/proc/self/stat".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return;
        }
        let n = libc::read(fd, args.stat_buf.cast(), STAT_BUF);
        libc::close(fd);
        let Ok(n) = usize::try_from(n) else {
            return;
        };
        let stat = std::slice::from_raw_parts(args.stat_buf, n.min(STAT_BUF));
        let boot = std::slice::from_raw_parts(args.boot, args.boot_len);
        let out = std::slice::from_raw_parts_mut(args.record_buf, RECORD_BUF);
        let pid = libc::getpid() as u32;
        if let Some(len) = format_child_record(pid, stat, boot, out) {
            let written = libc::write(args.record_fd, args.record_buf.cast(), len);
            args.recorded = usize::try_from(written) == Ok(len);
        }
    }
}

/// Elsewhere: std's spawn (no parent-death signal there), waited for by PID.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn spawn(program: &OsStr, args: &[OsString], opts: SpawnOptions) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // No /proc to read the start token from before exec: `with` records the command
    // after the spawn instead (`Child::recorded` stays false).
    let _ = opts.record_fd;
    let path = resolve_program(program)?;
    let mut command = std::process::Command::new(path);
    command
        .args(args)
        .envs(opts.env.iter().map(|(k, v)| (k, v)));
    if opts.own_group {
        command.process_group(0);
        if let Some(fd) = opts.terminal {
            // SAFETY: the closure runs in the child between fork and exec and makes only
            // async-signal-safe calls (sigprocmask, tcsetpgrp, getpid) on plain data.
            unsafe {
                command.pre_exec(move || {
                    let mut ttou: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut ttou);
                    libc::sigaddset(&mut ttou, libc::SIGTTOU);
                    let mut old: libc::sigset_t = std::mem::zeroed();
                    libc::sigprocmask(libc::SIG_BLOCK, &ttou, &mut old);
                    libc::tcsetpgrp(fd, libc::getpid());
                    libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
                    Ok(())
                });
            }
        }
    }
    let child = command.spawn()?;
    Ok(Child {
        pid: child.id() as libc::pid_t,
        recorded: false,
    })
}

/// Starts `program` with `args` (argv[0] is `program` as given) and this process's
/// environment; on Linux the child is SIGKILLed when lockrun dies.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn spawn(program: &OsStr, args: &[OsString], opts: SpawnOptions) -> io::Result<Child> {
    let path = resolve_program(program)?;
    let path_c = c_string(path.as_os_str().as_bytes())?;
    let mut argv_c = vec![c_string(program.as_bytes())?];
    for a in args {
        argv_c.push(c_string(a.as_bytes())?);
    }
    let mut sh_c = vec![c_string(b"sh")?, path_c.clone()];
    sh_c.extend(argv_c.iter().skip(1).cloned());
    let env_c: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| !opts.env.iter().any(|(name, _)| k == name))
        .chain(
            opts.env
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        )
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
    let boot = if opts.record_fd.is_some() {
        super::boot_id().unwrap_or_default().into_bytes()
    } else {
        Vec::new()
    };
    let mut stat_buf = vec![0u8; STAT_BUF];
    let mut record_buf = vec![0u8; RECORD_BUF];
    let mut child_args = ChildArgs {
        path: path_c.as_ptr(),
        argv: argv.as_ptr(),
        sh_argv: sh_argv.as_ptr(),
        envp: envp.as_ptr(),
        // SAFETY: getpid has no preconditions.
        parent: unsafe { libc::getpid() },
        die_with_parent: true,
        own_group: opts.own_group,
        terminal: opts.terminal.unwrap_or(-1),
        // Without a boot id the record could not say which boot: the parent writes it.
        record_fd: if boot.is_empty() {
            -1
        } else {
            opts.record_fd.unwrap_or(-1)
        },
        boot: boot.as_ptr(),
        boot_len: boot.len(),
        stat_buf: stat_buf.as_mut_ptr(),
        record_buf: record_buf.as_mut_ptr(),
        recorded: false,
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
    let mut child = Child {
        pid,
        recorded: child_args.recorded,
    };
    if child_args.errno != 0 {
        // The child could not exec and has exited: reap it, report why.
        while child.try_wait()?.is_none() {
            std::thread::yield_now();
        }
        return Err(io::Error::from_raw_os_error(child_args.errno));
    }
    Ok(child)
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::format_child_record;

    #[test]
    fn the_child_record_names_pid_start_and_group() {
        let stat =
            b"4242 (a) b) S 1 4242 4242 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        let mut out = [0u8; 256];
        let n = format_child_record(4242, stat, b"boot-id", &mut out).unwrap();
        assert_eq!(
            std::str::from_utf8(&out[..n]).unwrap(),
            "CHILD: 4242\nCHILD_START: 987654@boot-id\nCHILD_PGID: 4242\n"
        );
        // Too small a buffer, or a truncated stat line: nothing.
        assert_eq!(format_child_record(1, stat, b"b", &mut [0u8; 20]), None);
        assert_eq!(format_child_record(1, b"1 (x) S 1 2", b"b", &mut out), None);
    }
}
