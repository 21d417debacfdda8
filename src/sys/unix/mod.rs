//! The Unix platform: flock(2), POSIX signals, `/proc` (Linux) and their macOS
//! counterparts. Every `unsafe` block of lockrun lives under `sys/`, each with its reason.
//!
//! Linux is the primary platform. macOS has its own no-replace rename
//! (`renamex_np(RENAME_EXCL)`), process start token (`proc_pidinfo`) and boot id
//! (`kern.bootsessionuuid`); it has no parent-death signal and no `/proc/locks`. Other
//! Unix systems get the portable subset (mkdir locks, no start token).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use rustix::process::Pid;

pub(crate) mod owner;
pub(crate) mod proc_locks;
pub(crate) mod spawn;
pub(crate) mod tree;

/// Renames `from` to `to` only if `to` does not exist.
///
/// Returns `ErrorKind::AlreadyExists` when `to` exists (a non-empty directory too), and
/// `ErrorKind::Unsupported` when the filesystem or kernel cannot do it atomically, so
/// the caller can fall back to `mkdir`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => Err(
            io::Error::new(io::ErrorKind::Unsupported, "no-replace rename unsupported"),
        ),
        // ENOTEMPTY can come back for an existing non-empty target dir on some kernels.
        Err(e) if e == rustix::io::Errno::NOTEMPTY => {
            Err(io::Error::from(io::ErrorKind::AlreadyExists))
        }
        Err(e) => Err(e.into()),
    }
}

/// macOS: `renamex_np(RENAME_EXCL)` (10.12+); ENOTSUP/EINVAL where the filesystem
/// cannot (the caller falls back to `mkdir`).
#[cfg(target_os = "macos")]
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let from_c = c_path(from)?;
    let to_c = c_path(to)?;
    // SAFETY: both pointers are NUL-terminated C strings that live across the call;
    // renamex_np only reads them.
    let rc = unsafe { libc::renamex_np(from_c.as_ptr(), to_c.as_ptr(), libc::RENAME_EXCL) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOTSUP) | Some(libc::EINVAL) | Some(libc::ENOSYS) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no-replace rename unsupported",
        )),
        Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => {
            Err(io::Error::from(io::ErrorKind::AlreadyExists))
        }
        _ => Err(err),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
pub(crate) fn rename_noreplace(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no-replace rename not implemented on this platform",
    ))
}

/// This process's id.
pub(crate) fn current_pid() -> u32 {
    std::process::id()
}

/// The parent process's id (the shell that ran us, for `acquire`).
pub(crate) fn parent_pid() -> u32 {
    rustix::process::getppid().map_or(1, |p| p.as_raw_nonzero().get() as u32)
}

pub(crate) fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

pub(crate) fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// What `kill(pid, 0)` says about a process on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PidState {
    Alive,
    /// ESRCH: no such process.
    Gone,
}

pub(crate) fn pid_state(pid: u32) -> PidState {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return PidState::Gone;
    };
    match rustix::process::test_kill_process(pid) {
        Err(e) if e == rustix::io::Errno::SRCH => PidState::Gone,
        // Success or EPERM: a process with that id exists; but a zombie (exited, never
        // reaped: some container inits never reap) does no work and never will.
        _ if is_zombie(pid.as_raw_nonzero().get() as u32) => PidState::Gone,
        _ => PidState::Alive,
    }
}

/// True when `pid` has exited and waits to be reaped.
#[cfg(not(target_os = "macos"))]
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|end| stat.get(end + 1..))
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z")
    })
}

/// macOS: `pbi_status` SZOMB.
#[cfg(target_os = "macos")]
fn is_zombie(pid: u32) -> bool {
    bsd_info(pid).is_some_and(|info| info.pbi_status == SZOMB)
}

/// macOS: the `pbi_status` of a zombie (<sys/proc.h>).
#[cfg(target_os = "macos")]
const SZOMB: u32 = 5;

/// macOS: what `proc_pidinfo(PROC_PIDTBSDINFO)` tells of `pid` (`None`: gone, or not
/// ours to read).
#[cfg(target_os = "macos")]
fn bsd_info(pid: u32) -> Option<libc::proc_bsdinfo> {
    let pid = libc::c_int::try_from(pid).ok()?;
    // SAFETY: proc_bsdinfo is plain data; zeroed is a valid value.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = libc::c_int::try_from(std::mem::size_of::<libc::proc_bsdinfo>()).ok()?;
    // SAFETY: `info` is writable for `size` bytes, the size proc_pidinfo is told; it
    // returns how many bytes it wrote.
    let n = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    (n == size).then_some(info)
}

/// This boot's identity, so a PID from before a reboot is never taken for a live one.
#[cfg(not(target_os = "macos"))]
pub(crate) fn boot_id() -> Option<String> {
    // Read once per process: it cannot change while we run.
    static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
            Some(id.trim().to_string())
        })
        .clone()
}

/// A token that differs between two processes that had the same PID: the start time in
/// clock ticks since boot (field 22 of `/proc/<pid>/stat`) and the boot id.
#[cfg(not(target_os = "macos"))]
pub(crate) fn process_start_token(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past its end.
    let rest = &stat[stat.rfind(')')? + 2..];
    let starttime = rest.split_whitespace().nth(19)?;
    Some(format!("{starttime}@{}", boot_id()?))
}

/// True while the process `pid` that started as `start_token` still runs (a zombie, a
/// process that exited, or a new process with that PID do not).
#[cfg(not(target_os = "macos"))]
pub(crate) fn process_is_running(pid: u32, start_token: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(end) = stat.rfind(')') else {
        return false;
    };
    let mut fields = stat[end + 1..].split_whitespace();
    let state = fields.next().unwrap_or("X");
    let starttime = fields.nth(18).unwrap_or("");
    let same = start_token
        .split_once('@')
        .is_some_and(|(t, _)| t == starttime);
    same && !matches!(state, "Z" | "X" | "x")
}

/// The command line of process `pid` on this host, shell-quoted (Linux `/proc`), for
/// the `COMMAND:` of an `acquire` lock.
#[cfg(not(target_os = "macos"))]
pub(crate) fn process_command(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    if words.is_empty() {
        return None;
    }
    Some(shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" ")))
}

/// macOS: `kern.bootsessionuuid`, a UUID made at each boot (stable while up, unlike
/// `kern.boottime`, which moves when the clock is set).
#[cfg(target_os = "macos")]
pub(crate) fn boot_id() -> Option<String> {
    let name = c"kern.bootsessionuuid";
    let mut buf = [0u8; 128];
    let mut len: libc::size_t = buf.len();
    // SAFETY: `name` is a NUL-terminated C string; `buf` is writable for `len` bytes and
    // sysctlbyname writes at most that many, storing the length used in `len`; no new
    // value is set (null, 0).
    let rc = unsafe {
        libc::sysctlbyname(
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        return None;
    }
    let bytes = &buf[..len.min(buf.len())];
    let text = String::from_utf8_lossy(bytes);
    let id = text.trim_end_matches('\0').trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// macOS: the process start time (seconds and microseconds since the epoch, from
/// `proc_pidinfo(PROC_PIDTBSDINFO)`, as `ps` reads it) and the boot id.
#[cfg(target_os = "macos")]
pub(crate) fn process_start_token(pid: u32) -> Option<String> {
    let info = bsd_info(pid)?;
    Some(format!(
        "{}.{:06}@{}",
        info.pbi_start_tvsec,
        info.pbi_start_tvusec,
        boot_id()?
    ))
}

/// macOS: the executable's path (`proc_pidpath`); the arguments are not readable
/// without `KERN_PROCARGS2` parsing, and the path is what a human needs to tell who.
#[cfg(target_os = "macos")]
pub(crate) fn process_command(pid: u32) -> Option<String> {
    let pid = libc::c_int::try_from(pid).ok()?;
    let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
    let cap = u32::try_from(buf.len()).ok()?;
    // SAFETY: `buf` is writable for `cap` bytes; proc_pidpath writes at most that many
    // and returns the length of the path.
    let n = unsafe { libc::proc_pidpath(pid, buf.as_mut_ptr().cast(), cap) };
    let n = usize::try_from(n).ok().filter(|&n| n > 0)?;
    buf.truncate(n.min(buf.len()));
    let path = String::from_utf8_lossy(&buf).into_owned();
    Some(shlex::try_quote(&path).map_or(path.clone(), |q| q.into_owned()))
}

/// A set of signals held pending in this thread, to be taken one at a time with
/// [`SignalMask::wait`]. Dropping it restores the previous mask.
#[derive(Debug)]
pub(crate) struct SignalMask {
    set: libc::sigset_t,
    old: libc::sigset_t,
}

/// A signal taken by [`SignalMask::wait`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    pub(crate) signal: i32,
}

impl SignalMask {
    /// Blocks `signals` in the calling thread (children started later get a clean mask
    /// from std's spawn).
    pub(crate) fn block(signals: &[i32]) -> io::Result<Self> {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it before any use, and
        // pthread_sigmask only reads `set` and writes `old`, both valid for the call.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(SignalMask { set, old })
        }
    }

    /// Waits for one of the blocked signals, at most `timeout` (forever when `None`).
    /// Returns `None` on timeout.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<Received>> {
        loop {
            // SAFETY: siginfo_t is plain data filled by the kernel; `self.set` was
            // initialised in `block`; the timespec lives across the call.
            let rc = unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                match timeout {
                    Some(t) => {
                        let ts = libc::timespec {
                            tv_sec: t.as_secs() as libc::time_t,
                            tv_nsec: t.subsec_nanos() as libc::c_long,
                        };
                        libc::sigtimedwait(&self.set, &mut info, &ts)
                    }
                    #[cfg(target_os = "linux")]
                    None => libc::sigwaitinfo(&self.set, &mut info),
                    // Bionic's binding lacks sigwaitinfo; a null timeout waits forever.
                    #[cfg(target_os = "android")]
                    None => libc::sigtimedwait(&self.set, &mut info, std::ptr::null()),
                }
            };
            if rc >= 0 {
                return Ok(Some(Received { signal: rc }));
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(None),
                Some(libc::EINTR) => continue,
                _ => return Err(err),
            }
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<Received>> {
        // Portable fallback: poll the pending set. Coarse, but correct.
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            // SAFETY: sigpending writes a sigset_t we own; sigismember only reads it.
            let pending = unsafe {
                let mut p: libc::sigset_t = std::mem::zeroed();
                libc::sigpending(&mut p);
                p
            };
            for sig in 1..32 {
                // SAFETY: both sets are initialised sigset_t values.
                let hit = unsafe {
                    libc::sigismember(&self.set, sig) == 1 && libc::sigismember(&pending, sig) == 1
                };
                if hit {
                    let mut got: libc::c_int = 0;
                    // SAFETY: sigwait returns at once since `sig` is pending and blocked.
                    unsafe { libc::sigwait(&self.set, &mut got) };
                    return Ok(Some(Received { signal: got }));
                }
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for SignalMask {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `block`, a valid sigset_t.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

/// `Path` as a C string, for the few libc calls that take one.
pub(crate) fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Lets `fd` survive `exec` (for `--inherit` and `--exec`).
pub(crate) fn set_inheritable(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
    Ok(())
}

pub(crate) fn set_close_on_exec(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?;
    Ok(())
}

/// Makes writes past `ulimit -f` fail with EFBIG instead of killing the process with
/// SIGXFSZ, so a too-large result is reported (exit 74) and its temp file removed.
pub(crate) fn ignore_file_size_signal() {
    // SAFETY: installing SIG_IGN for SIGXFSZ touches no memory of ours and is
    // async-signal-safe; no handler code runs.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// The soft file size limit (`ulimit -f`) in bytes; `None` when unlimited.
pub(crate) fn file_size_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Fsize).current
}

/// What Rust's own start-up would have done that lockrun relies on, for an executable
/// that defines the C `main` itself (see `src/main.rs`): SIGPIPE ignored, so a closed
/// stdout is an EPIPE error the command reports, and the command lockrun runs gets
/// SIGPIPE back at its default (`spawn` resets it); and closed standard descriptors
/// reopened on /dev/null, so that no file lockrun opens (a lock's `info`, a reader
/// gate, the target) becomes fd 0, 1 or 2 and receives what is meant for stdout or
/// stderr.
pub(crate) fn process_setup() {
    // SAFETY: installing SIG_IGN for SIGPIPE touches no memory of ours and is
    // async-signal-safe; no handler code runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    reopen_closed_stdio();
}

/// Opens /dev/null on each of fd 0, 1 and 2 that is closed (as std's start-up does).
fn reopen_closed_stdio() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only asks whether `fd` is open; it touches no memory.
        let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
            && io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
        if !closed {
            continue;
        }
        // The lowest free descriptor is `fd` itself (the ones below it are open by
        // now), so the opened /dev/null takes its place. Left open on purpose.
        let null = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDWR,
            rustix::fs::Mode::empty(),
        );
        if let Ok(null) = null
            && std::os::fd::AsRawFd::as_raw_fd(&null) == fd
        {
            let _ = std::os::fd::IntoRawFd::into_raw_fd(null);
        }
    }
}

/// True while the process `pid` that started as `start_token` still runs.
#[cfg(target_os = "macos")]
pub(crate) fn process_is_running(pid: u32, start_token: &str) -> bool {
    process_start_token(pid).as_deref() == Some(start_token)
}

/// Closes every descriptor above stderr. For a process that outlives the one that started
/// it (the etcd keeper): a pipe it inherited from the caller's shell would otherwise stay
/// open, and a reader of that pipe would wait for an end of file until the keeper exits.
/// Call it first, before anything of this process opens a descriptor.
pub(crate) fn close_inherited_descriptors() {
    let dir = if cfg!(target_os = "linux") || cfg!(target_os = "android") {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    };
    // Listed first and closed after: the listing holds a descriptor of its own.
    let fds: Vec<i32> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&fd| fd > 2)
            .collect(),
        Err(_) => return,
    };
    for fd in fds {
        // SAFETY: called before this process opened anything of its own (the listing's
        // descriptor is closed by now, and closing it again only fails with EBADF), so no
        // Rust object owns these descriptors: they came from the parent through exec.
        unsafe {
            libc::close(fd);
        }
    }
}
