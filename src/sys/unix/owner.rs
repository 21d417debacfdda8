//! Who owns an `acquire` lock: the shell that will go on to run `release`.
//!
//! `lockrun acquire` often runs in a subshell that the shell forked and that exits at
//! once: `id=$(lockrun acquire F 2>/dev/null)`, `( ... )`, a pipeline member, a function
//! run in a subshell. Its parent process is then that subshell. A forked subshell has
//! not exec'd: it runs the same executable with the same command line as the shell it
//! was forked from, in a copy of that shell's address space. So lockrun walks up from
//! the parent while the next process up is that same image:
//!
//! - Linux: same `/proc/<pid>/exe`, same `/proc/<pid>/cmdline`, and the same stack
//!   start (`/proc/<pid>/stat` field 28), which a fork copies and each exec places anew
//!   (address-space randomisation). A shell started by another with the very same
//!   command line is therefore its own owner, not taken for a subshell.
//! - macOS: same executable path (`proc_pidpath`) and the same exec-time argument and
//!   environment area (`KERN_PROCARGS2`), which a fork copies. A shell exec'd by another
//!   with the same command line and environment would be taken for a subshell there:
//!   the lock then lasts until the outer shell exits.
//!
//! Anything unreadable (another user's process) stops the walk: the owner is then the
//! last process known to be the caller's.

/// The shell that `pid` (a parent of lockrun, or `--owner PID`) is a forked subshell of,
/// or `pid` itself.
pub(crate) fn calling_shell(pid: u32) -> u32 {
    let mut pid = pid;
    // A subshell of a subshell of ... : shells nest a few levels, never hundreds.
    for _ in 0..64 {
        let Some(parent) = parent_of(pid) else {
            break;
        };
        if parent <= 1 || !same_image(pid, parent) {
            break;
        }
        pid = parent;
    }
    pid
}

#[cfg(not(target_os = "macos"))]
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields from 3 (state) on; the command name (field 2) may hold spaces and ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

#[cfg(not(target_os = "macos"))]
fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

#[cfg(not(target_os = "macos"))]
fn same_image(child: u32, parent: u32) -> bool {
    let exe = |p: u32| std::fs::read_link(format!("/proc/{p}/exe")).ok();
    let cmdline = |p: u32| std::fs::read(format!("/proc/{p}/cmdline")).ok();
    // Field 28, `startstack`; 0 when we may not look into the process.
    let stack = |p: u32| -> Option<u64> {
        let v: u64 = stat_fields(p)?.get(25)?.parse().ok()?;
        (v != 0).then_some(v)
    };
    let (Some(e1), Some(e2)) = (exe(child), exe(parent)) else {
        return false;
    };
    let (Some(c1), Some(c2)) = (cmdline(child), cmdline(parent)) else {
        return false;
    };
    let (Some(s1), Some(s2)) = (stack(child), stack(parent)) else {
        return false;
    };
    e1 == e2 && !c1.is_empty() && c1 == c2 && s1 == s2
}

#[cfg(target_os = "macos")]
fn parent_of(pid: u32) -> Option<u32> {
    Some(super::bsd_info(pid)?.pbi_ppid)
}

/// The exec-time argument and environment area of `pid` (`KERN_PROCARGS2`).
#[cfg(target_os = "macos")]
fn procargs(pid: u32) -> Option<Vec<u8>> {
    let pid = libc::c_int::try_from(pid).ok()?;
    let mut mib = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid];
    let mut len: libc::size_t = 0;
    // SAFETY: a null buffer asks only for the size, written to `len`.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            3,
            std::ptr::null_mut(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 || len == 0 {
        return None;
    }
    let mut buf = vec![0u8; len];
    // SAFETY: `buf` is writable for `len` bytes; sysctl writes at most that many and
    // stores the length used in `len`.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            3,
            buf.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        return None;
    }
    buf.truncate(len);
    Some(buf)
}

#[cfg(target_os = "macos")]
fn same_image(child: u32, parent: u32) -> bool {
    let (Some(p1), Some(p2)) = (
        super::process_command(child),
        super::process_command(parent),
    ) else {
        return false;
    };
    let (Some(a1), Some(a2)) = (procargs(child), procargs(parent)) else {
        return false;
    };
    p1 == p2 && a1.len() > 4 && a1 == a2
}
