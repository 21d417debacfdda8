//! `with`'s command on Windows: a Job object with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`
//! holds the command and everything it starts, so nothing of it outlives lockrun (its
//! last handle to the job closes when lockrun exits, however it exits). The command is
//! created suspended and assigned before its first instruction runs, so it cannot start
//! a process outside the job first.
//!
//! The command also leads a console process group of its own (`CREATE_NEW_PROCESS_GROUP`),
//! so that `--max-hold` can ask it to stop with a Ctrl-Break aimed at it alone before
//! ending the job, as Unix sends SIGTERM before SIGKILL. Windows disables Ctrl-C in such
//! a group and cannot aim a Ctrl-C at one, so lockrun passes each Ctrl-C and Ctrl-Break
//! it gets on to the command as a Ctrl-Break.

use std::ffi::{OsStr, OsString};
use std::io;
use std::mem::{size_of, zeroed};
use std::os::windows::io::AsRawHandle;
use std::os::windows::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use windows_sys::Win32::Foundation::{
    CloseHandle, FALSE, HANDLE, INVALID_HANDLE_VALUE, TRUE, WAIT_OBJECT_0,
};
use windows_sys::Win32::System::Console::{
    CTRL_BREAK_EVENT, CTRL_C_EVENT, GenerateConsoleCtrlEvent, SetConsoleCtrlHandler,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW, TH32CS_SNAPPROCESS,
    TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::Threading::{
    CREATE_NEW_PROCESS_GROUP, CREATE_SUSPENDED, OpenThread, ResumeThread, THREAD_SUSPEND_RESUME,
    WaitForSingleObject,
};

/// An owned kernel handle, closed on drop.
#[derive(Debug)]
struct Owned(HANDLE);

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: the handle was returned to us by the system and is closed once, here.
        unsafe { CloseHandle(self.0) };
    }
}

/// The command, running inside its Job object. Dropping it closes the job, which ends
/// every process still in it.
#[derive(Debug)]
pub struct JobChild {
    child: Child,
    job: Owned,
}

/// Starts `program` with `args` suspended, puts it in a new kill-on-close job, then lets
/// it run.
pub fn spawn_in_job(program: &OsStr, args: &[OsString]) -> io::Result<JobChild> {
    // SAFETY: null attributes and name: an unnamed job with default security.
    let job = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
    if job.is_null() {
        return Err(io::Error::last_os_error());
    }
    let job = Owned(job);
    // SAFETY: plain data; all-zero is a valid "no limits" value to start from.
    let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { zeroed() };
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    // SAFETY: `job.0` is a job handle with all access; the pointer and size describe
    // `limits`, which lives across the call.
    let ok = unsafe {
        SetInformationJobObject(
            job.0,
            JobObjectExtendedLimitInformation,
            (&raw const limits).cast(),
            size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut child = Command::new(program)
        .args(args)
        .creation_flags(CREATE_SUSPENDED | CREATE_NEW_PROCESS_GROUP)
        .spawn()?;
    // SAFETY: both handles are open: the job above, the process from std's Child.
    let assigned = unsafe { AssignProcessToJobObject(job.0, child.as_raw_handle() as HANDLE) } != 0;
    let started = assigned && resume_threads(child.id());
    if !started {
        let err = io::Error::last_os_error();
        let _ = child.kill();
        let _ = child.wait();
        return Err(err);
    }
    COMMAND_GROUP.store(child.id(), Ordering::SeqCst);
    Ok(JobChild { child, job })
}

/// Resumes the (single) suspended thread of a process we just created.
fn resume_threads(pid: u32) -> bool {
    // SAFETY: a snapshot of all threads; the handle is checked and owned below.
    let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if snap == INVALID_HANDLE_VALUE {
        return false;
    }
    let snap = Owned(snap);
    // SAFETY: plain data; dwSize is set as the API requires.
    let mut entry: THREADENTRY32 = unsafe { zeroed() };
    entry.dwSize = size_of::<THREADENTRY32>() as u32;
    let mut resumed = false;
    // SAFETY: `snap.0` is a thread snapshot and `entry` a writable THREADENTRY32 of the
    // size stated in it, for this and every following call.
    let mut more = unsafe { Thread32First(snap.0, &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            // SAFETY: OpenThread takes plain values; the handle is owned below.
            let thread = unsafe { OpenThread(THREAD_SUSPEND_RESUME, FALSE, entry.th32ThreadID) };
            if !thread.is_null() {
                let thread = Owned(thread);
                // SAFETY: `thread.0` has THREAD_SUSPEND_RESUME access.
                resumed |= unsafe { ResumeThread(thread.0) } != u32::MAX;
            }
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(snap.0, &mut entry) } != 0;
    }
    resumed
}

impl JobChild {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the command until `deadline` (forever when `None`); `None` when the
    /// deadline came first.
    pub fn wait_until(&mut self, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
        loop {
            let ms = match deadline {
                None => u32::MAX, // INFINITE
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return self.child.try_wait();
                    }
                    left.as_millis().min(u128::from(u32::MAX - 1)) as u32
                }
            };
            // SAFETY: the process handle stays open while `self.child` lives.
            let r = unsafe { WaitForSingleObject(self.child.as_raw_handle() as HANDLE, ms) };
            if r == WAIT_OBJECT_0 {
                return self.child.wait().map(Some);
            }
        }
    }

    /// Asks the command to stop: a Ctrl-Break to its process group (the closest Windows has
    /// to SIGTERM; a console program's default answer is to exit, and a program that
    /// handles it can clean up). False when it could not be sent (no console shared
    /// with the command).
    pub fn interrupt(&self) -> bool {
        send_break(self.child.id())
    }

    /// Ends every process of the job with `code` (`--max-hold`).
    pub fn terminate(&mut self, code: u32) -> io::Result<ExitStatus> {
        // SAFETY: `self.job.0` is our job handle (with JOB_OBJECT_TERMINATE access).
        if unsafe { TerminateJobObject(self.job.0, code) } == 0 {
            return Err(io::Error::last_os_error());
        }
        self.child.wait()
    }
}

/// The parent process id of `pid` and the executable name of `pid`, from a process
/// snapshot.
fn parent_entry(pid: u32) -> Option<(u32, String)> {
    // SAFETY: a snapshot of all processes; the handle is checked and owned below.
    let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) };
    if snap == INVALID_HANDLE_VALUE {
        return None;
    }
    let snap = Owned(snap);
    // SAFETY: plain data; dwSize is set as the API requires.
    let mut entry: PROCESSENTRY32W = unsafe { zeroed() };
    entry.dwSize = size_of::<PROCESSENTRY32W>() as u32;
    // SAFETY: `snap.0` is a process snapshot and `entry` a writable PROCESSENTRY32W of
    // the size stated in it, for this and every following call.
    let mut more = unsafe { Process32FirstW(snap.0, &mut entry) } != 0;
    while more {
        if entry.th32ProcessID == pid {
            let len = entry
                .szExeFile
                .iter()
                .position(|&c| c == 0)
                .unwrap_or(entry.szExeFile.len());
            let name = String::from_utf16_lossy(&entry.szExeFile[..len]).to_lowercase();
            return Some((entry.th32ParentProcessID, name));
        }
        // SAFETY: as for Process32FirstW.
        more = unsafe { Process32NextW(snap.0, &mut entry) } != 0;
    }
    None
}

/// The parent process id of `pid`.
pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    parent_entry(pid).map(|(parent, _)| parent)
}

/// Shells that run a program from a forked copy of themselves (MSYS2, which Git Bash is).
const FORKING_SHELLS: &[&str] = &["bash.exe", "sh.exe", "dash.exe", "zsh.exe"];

/// The shell `acquire` works for, starting from `pid` (its parent, or `--owner`):
/// looking past forked copies of a POSIX shell directly above it. Git Bash (MSYS2) runs a
/// program from a forked `bash.exe`, a Windows process of its own that lives only as
/// long as the program; its parent, the shell itself, is also `bash.exe`. PowerShell
/// (`powershell.exe`, `pwsh.exe`) and `cmd.exe` start a program as their direct child:
/// `pid` is the owner. On Unix lockrun tells a forked copy by its command line, the
/// same as its parent's; a Cygwin/MSYS2 fork's Windows command line is not its
/// parent's (Cygwin's fork passes the program's path), so here the executable name
/// decides, and a `bash script.sh` run from
/// an interactive Git Bash gives its lock to the interactive shell (one lock too long,
/// never too short).
pub(crate) fn calling_shell(pid: u32) -> u32 {
    let mut owner = pid;
    for _ in 0..16 {
        let Some((up, owner_name)) = parent_entry(owner) else {
            break;
        };
        if up == 0 {
            break;
        }
        let forked = FORKING_SHELLS.contains(&owner_name.as_str());
        let helper_cmd = owner_name == "cmd.exe" && runs_one_command(owner);
        if !forked && !helper_cmd {
            break;
        }
        match parent_entry(up) {
            Some((_, up_name)) if up_name == owner_name => owner = up,
            _ => break,
        }
    }
    owner
}

/// A `cmd /c ...`, started by another cmd: what cmd's `for /f %%i in ('lockrun acquire
/// ...')` starts to capture a program's output. It ends with the program, so a lock
/// owned by it would be stale at once; the cmd above it (the script's) is the owner.
/// (A `cmd /c script.bat` typed at an interactive cmd gives its locks to that cmd: one
/// lock too long, never too short.)
fn runs_one_command(pid: u32) -> bool {
    super::process_command(pid).is_some_and(|line| {
        line.split_whitespace()
            .skip(1)
            .any(|w| w.eq_ignore_ascii_case("/c"))
    })
}

/// The process group of the command running in a job (its first process's id), 0
/// before there is one: where the console handler passes interrupts on to.
static COMMAND_GROUP: AtomicU32 = AtomicU32::new(0);

fn send_break(group: u32) -> bool {
    // SAFETY: plain values; a group that is gone makes the call fail, nothing more.
    unsafe { GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, group) != 0 }
}

/// While the command runs, lockrun stays to release the lock and report the command's
/// status: a Ctrl-C or Ctrl-Break that reaches lockrun is passed on to the command's
/// group as a Ctrl-Break (see the module comment), and lockrun waits for it to end.
/// Closing the console still ends lockrun (and so the job).
pub fn forward_console_interrupts() {
    unsafe extern "system" fn handler(kind: u32) -> windows_sys::core::BOOL {
        if kind != CTRL_C_EVENT && kind != CTRL_BREAK_EVENT {
            return FALSE;
        }
        let group = COMMAND_GROUP.load(Ordering::SeqCst);
        if group != 0 {
            send_break(group);
        }
        TRUE
    }
    // SAFETY: `handler` is a valid `extern "system"` routine for the whole process life.
    unsafe { SetConsoleCtrlHandler(Some(handler), TRUE) };
}
