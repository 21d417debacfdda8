//! The Windows platform: `LockFileEx` for liveness, `MoveFileExW` to publish and replace,
//! process identity by PID plus creation time, Job objects for `with`'s command tree.
//!
//! Differences from Unix that the lock engine relies on, each with its reason:
//! - The holder's lock on `info` covers one byte far past the end of the file, not the
//!   whole file: a Windows byte-range lock is mandatory, and a whole-file lock would stop
//!   everybody else from reading who holds the lock.
//! - A directory cannot be renamed while a file in it is open (NTFS refuses), so the
//!   holder publishes `<hex>.lock` with its `info` closed, then opens and locks it; until
//!   then the holder's PID and creation time, which `info` names, prove it alive.
//! - There is no boot id: a creation time is absolute, so PID plus creation time already
//!   tells a process from an earlier one that had the same PID before a reboot.

pub mod job;
pub mod lock_files;
pub mod path;
pub mod replace;

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::AsRawHandle;
use std::path::Path;

use windows_sys::Wdk::System::Threading::{
    NtQueryInformationProcess, ProcessBasicInformation, ProcessCommandLineInformation,
};
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_FILE_EXISTS,
    ERROR_INVALID_PARAMETER, ERROR_LOCK_VIOLATION, FILETIME, GetLastError, HANDLE, UNICODE_STRING,
    WAIT_TIMEOUT,
};
use windows_sys::Win32::Storage::FileSystem::{
    BY_HANDLE_FILE_INFORMATION, GetFileInformationByHandle, LOCKFILE_EXCLUSIVE_LOCK,
    LOCKFILE_FAIL_IMMEDIATELY, LockFileEx, MoveFileExW, UnlockFileEx,
};
use windows_sys::Win32::System::Diagnostics::Debug::ReadProcessMemory;
use windows_sys::Win32::System::IO::OVERLAPPED;
use windows_sys::Win32::System::SystemInformation::{ComputerNameDnsHostname, GetComputerNameExW};
use windows_sys::Win32::System::Threading::{
    GetProcessTimes, OpenProcess, PEB, PROCESS_BASIC_INFORMATION, PROCESS_QUERY_INFORMATION,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE, PROCESS_VM_READ,
    RTL_USER_PROCESS_PARAMETERS, WaitForSingleObject,
};

/// A NUL-terminated UTF-16 copy of `path` for the `W` functions.
pub(crate) fn wide(path: &Path) -> Vec<u16> {
    OsStr::new(path).encode_wide().chain([0]).collect()
}

/// Windows has no per-process file size limit (`ulimit -f`).
pub(crate) fn file_size_limit() -> Option<u64> {
    None
}

/// No SIGXFSZ on Windows.
pub(crate) fn ignore_file_size_signal() {}

/// The command line of another process (`NtQueryInformationProcess`'s
/// `ProcessCommandLineInformation`, Windows 8.1 and later): an `acquire` lock's
/// `COMMAND:`, and what tells Git Bash's forked copies of a shell from the shell.
pub(crate) fn process_command(pid: u32) -> Option<String> {
    const STATUS_INFO_LENGTH_MISMATCH: i32 = 0xC000_0004_u32 as i32;
    let h = ProcessHandle::open(pid).ok()?;
    // u64s keep the UNICODE_STRING at the start aligned.
    let mut buf: Vec<u64> = vec![0; 256];
    for _ in 0..4 {
        let size = u32::try_from(buf.len() * 8).ok()?;
        let mut needed = 0u32;
        // SAFETY: `h.0` is a process handle with query access; `buf` is writable for
        // `size` bytes and `needed` lives across the call.
        let status = unsafe {
            NtQueryInformationProcess(
                h.0,
                ProcessCommandLineInformation,
                buf.as_mut_ptr().cast(),
                size,
                &mut needed,
            )
        };
        if status == STATUS_INFO_LENGTH_MISMATCH && needed > size {
            buf = vec![0; (needed as usize).div_ceil(8)];
            continue;
        }
        if status < 0 {
            // Older Windows (and Wine) lack that class: read it where Windows keeps it.
            return command_line_from_peb(pid);
        }
        // SAFETY: on success the buffer starts with a UNICODE_STRING whose Buffer points
        // into `buf` itself (Length bytes, within the size returned).
        let text = unsafe {
            let us = &*buf.as_ptr().cast::<UNICODE_STRING>();
            if us.Buffer.is_null() {
                return None;
            }
            std::slice::from_raw_parts(us.Buffer, usize::from(us.Length) / 2)
        };
        let line = String::from_utf16_lossy(text);
        return (!line.is_empty()).then_some(line);
    }
    None
}

/// The command line of `pid` from its process environment block: the
/// `RTL_USER_PROCESS_PARAMETERS` its PEB points to, read with `ReadProcessMemory`.
fn command_line_from_peb(pid: u32) -> Option<String> {
    // SAFETY: OpenProcess takes plain values and returns a new handle or null.
    let h = unsafe { OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_VM_READ, 0, pid) };
    if h.is_null() {
        return None;
    }
    let h = ProcessHandle(h);
    // SAFETY: plain data; all-zero is valid.
    let mut basic: PROCESS_BASIC_INFORMATION = unsafe { zeroed() };
    let mut got = 0u32;
    // SAFETY: `h.0` has PROCESS_QUERY_INFORMATION; the pointer and size describe
    // `basic`, which lives across the call.
    let status = unsafe {
        NtQueryInformationProcess(
            h.0,
            ProcessBasicInformation,
            (&raw mut basic).cast(),
            size_of::<PROCESS_BASIC_INFORMATION>() as u32,
            &mut got,
        )
    };
    if status < 0 || basic.PebBaseAddress.is_null() {
        return None;
    }
    let peb: PEB = read_remote(&h, basic.PebBaseAddress as usize)?;
    let params: RTL_USER_PROCESS_PARAMETERS = read_remote(&h, peb.ProcessParameters as usize)?;
    let units = usize::from(params.CommandLine.Length) / 2;
    if units == 0 || params.CommandLine.Buffer.is_null() {
        return None;
    }
    let mut text = vec![0u16; units];
    let mut read = 0usize;
    // SAFETY: `h.0` has PROCESS_VM_READ; `text` is writable for `units * 2` bytes; the
    // call copies from the other process and fails on an unreadable address.
    let ok = unsafe {
        ReadProcessMemory(
            h.0,
            params.CommandLine.Buffer.cast(),
            text.as_mut_ptr().cast(),
            units * 2,
            &mut read,
        )
    };
    (ok != 0 && read == units * 2).then(|| String::from_utf16_lossy(&text))
}

/// A `T` copied from `addr` in the process `h`. Only for plain-data `T` (structures of
/// integers and pointers, which any bytes make valid).
fn read_remote<T: Copy>(h: &ProcessHandle, addr: usize) -> Option<T> {
    if addr == 0 {
        return None;
    }
    let mut value = std::mem::MaybeUninit::<T>::zeroed();
    let mut read = 0usize;
    // SAFETY: `value` is writable for size_of::<T>() bytes; the call copies from the
    // other process and fails on an unreadable address.
    let ok = unsafe {
        ReadProcessMemory(
            h.0,
            addr as *const core::ffi::c_void,
            value.as_mut_ptr().cast(),
            size_of::<T>(),
            &mut read,
        )
    };
    // SAFETY: the bytes were all written (read == size) and T is plain data.
    (ok != 0 && read == size_of::<T>()).then(|| unsafe { value.assume_init() })
}

/// A holder of a lock on a file, as Linux's /proc/locks tells (never on Windows).
#[derive(Debug, Clone)]
pub(crate) struct LockHolder {
    pub pid: u32,
    pub shared: bool,
    pub waiting: bool,
}

/// What Rust's own start-up would have done that lockrun relies on: nothing on Windows.
pub(crate) fn process_setup() {}

pub(crate) fn current_pid() -> u32 {
    std::process::id()
}

/// The process that started this one (0 when it cannot be told).
pub(crate) fn parent_pid() -> u32 {
    job::parent_of(current_pid()).unwrap_or(0)
}

/// Who owns an `acquire` lock (`sys::owner` on Unix).
pub mod owner {
    /// The shell that will run `release`, from `pid` up: past the short-lived `bash.exe`
    /// Git Bash forks to run a program. PowerShell starts a program as its direct child.
    pub(crate) fn calling_shell(pid: u32) -> u32 {
        super::job::calling_shell(pid)
    }
}

/// The per-user local application data directory (`%LOCALAPPDATA%`), where `--name`
/// locks live when neither `XDG_STATE_HOME` nor `HOME` is set.
pub(crate) fn local_app_data() -> Option<std::path::PathBuf> {
    std::env::var_os("LOCALAPPDATA")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// Windows has no numeric user id; `UID:` records 0 there.
pub(crate) fn current_uid() -> u32 {
    0
}

pub(crate) fn hostname() -> String {
    let mut buf = [0u16; 256];
    let mut len = buf.len() as u32;
    // SAFETY: `buf` is writable for `len` UTF-16 units and `len` lives across the call,
    // which writes at most that many units and stores the count it wrote.
    let ok = unsafe { GetComputerNameExW(ComputerNameDnsHostname, buf.as_mut_ptr(), &mut len) };
    if ok == 0 {
        return std::env::var("COMPUTERNAME").unwrap_or_else(|_| "localhost".into());
    }
    String::from_utf16_lossy(&buf[..len as usize])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PidState {
    Alive,
    Gone,
}

/// An open process handle, closed on drop.
struct ProcessHandle(HANDLE);

impl ProcessHandle {
    fn open(pid: u32) -> Result<Self, u32> {
        // SAFETY: OpenProcess takes plain values and returns a new handle or null.
        let h = unsafe {
            OpenProcess(
                PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE,
                0,
                pid,
            )
        };
        if h.is_null() {
            // SAFETY: reads this thread's last-error value; no pointers.
            Err(unsafe { GetLastError() })
        } else {
            Ok(ProcessHandle(h))
        }
    }

    /// Still running: a process object outlives its process while handles to it exist.
    fn running(&self) -> bool {
        // SAFETY: self.0 is a valid process handle with SYNCHRONIZE access; a zero timeout
        // only polls.
        unsafe { WaitForSingleObject(self.0, 0) == WAIT_TIMEOUT }
    }

    fn creation_time(&self) -> Option<u64> {
        // SAFETY: FILETIME is plain data; all-zero is a valid value.
        let mut times: [FILETIME; 4] = unsafe { zeroed() };
        let [c, e, k, u] = &mut times;
        // SAFETY: self.0 is a valid process handle with query access; the four pointers
        // are distinct, writable FILETIMEs that outlive the call.
        let ok = unsafe { GetProcessTimes(self.0, c, e, k, u) };
        (ok != 0).then(|| (u64::from(c.dwHighDateTime) << 32) | u64::from(c.dwLowDateTime))
    }
}

impl Drop for ProcessHandle {
    fn drop(&mut self) {
        // SAFETY: self.0 came from OpenProcess and is closed exactly once, here.
        unsafe { CloseHandle(self.0) };
    }
}

pub(crate) fn pid_state(pid: u32) -> PidState {
    match ProcessHandle::open(pid) {
        Ok(h) if h.running() => PidState::Alive,
        Ok(_) => PidState::Gone,
        // No such process id.
        Err(ERROR_INVALID_PARAMETER) => PidState::Gone,
        // It exists but is not ours to query (another user's, a protected process).
        Err(_) => PidState::Alive,
    }
}

/// None: a creation time is absolute, so no boot id is needed (see the module comment).
pub(crate) fn boot_id() -> Option<String> {
    None
}

/// The process's creation time (100 ns units since 1601) as `ct<decimal>`.
pub(crate) fn process_start_token(pid: u32) -> Option<String> {
    let h = ProcessHandle::open(pid).ok()?;
    Some(format!("ct{}", h.creation_time()?))
}

/// True while the process `pid` that started as `start_token` still runs.
pub(crate) fn process_is_running(pid: u32, start_token: &str) -> bool {
    let h = match ProcessHandle::open(pid) {
        Ok(h) => h,
        // No such process id.
        Err(ERROR_INVALID_PARAMETER) => return false,
        // It exists but is not ours to query (another user's, a protected process): its
        // start cannot be compared, and taking a live holder for dead would let two in.
        Err(_) => return true,
    };
    h.running() && h.creation_time().map(|t| format!("ct{t}")).as_deref() == Some(start_token)
}

/// Renames `from` to `to` only if `to` does not exist (`MoveFileExW` without
/// `MOVEFILE_REPLACE_EXISTING`; for a directory it never replaces anyway).
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (wide(from), wide(to));
    // SAFETY: both are NUL-terminated UTF-16 strings that live across the call.
    if unsafe { MoveFileExW(f.as_ptr(), t.as_ptr(), 0) } != 0 {
        return Ok(());
    }
    // SAFETY: reads this thread's last-error value; no pointers.
    match unsafe { GetLastError() } {
        ERROR_ALREADY_EXISTS | ERROR_FILE_EXISTS => {
            Err(io::Error::from(io::ErrorKind::AlreadyExists))
        }
        // The target is a directory being deleted, or something has the source open:
        // both pass; the caller treats it like a lock that is held for now.
        ERROR_ACCESS_DENIED if to.exists() => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
        code => Err(io::Error::from_raw_os_error(code as i32)),
    }
}

/// The byte a lock file's lock covers: far past any text, so that the text stays
/// readable (a Windows byte-range lock is mandatory for reads by others).
const LOCK_OFFSET: u64 = 0x7fff_ffff_ffff_fff0;

fn lock_overlapped() -> OVERLAPPED {
    // SAFETY: OVERLAPPED is plain data; all-zero is its documented initial state.
    let mut ov: OVERLAPPED = unsafe { zeroed() };
    ov.Anonymous.Anonymous.Offset = LOCK_OFFSET as u32;
    ov.Anonymous.Anonymous.OffsetHigh = (LOCK_OFFSET >> 32) as u32;
    ov
}

/// `LockFileEx` on the lock byte: exclusive or shared, blocking or not. `Ok(false)` when
/// `wait` is false and someone else holds it.
pub(crate) fn lock_file(file: &File, exclusive: bool, wait: bool) -> io::Result<bool> {
    let mut flags = 0;
    if exclusive {
        flags |= LOCKFILE_EXCLUSIVE_LOCK;
    }
    if !wait {
        flags |= LOCKFILE_FAIL_IMMEDIATELY;
    }
    let mut ov = lock_overlapped();
    // SAFETY: the handle is open for the duration of the call (borrowed from `file`),
    // and `ov` is a valid OVERLAPPED that outlives it; the handle is synchronous, so the
    // call completes (or fails) before returning.
    let ok = unsafe { LockFileEx(file.as_raw_handle() as HANDLE, flags, 0, 1, 0, &mut ov) };
    if ok != 0 {
        return Ok(true);
    }
    // SAFETY: reads this thread's last-error value; no pointers.
    match unsafe { GetLastError() } {
        ERROR_LOCK_VIOLATION if !wait => Ok(false),
        code => Err(io::Error::from_raw_os_error(code as i32)),
    }
}

pub(crate) fn unlock_file(file: &File) -> io::Result<()> {
    let mut ov = lock_overlapped();
    // SAFETY: as in lock_file; unlocking a byte we do not hold fails harmlessly.
    let ok = unsafe { UnlockFileEx(file.as_raw_handle() as HANDLE, 0, 1, 0, &mut ov) };
    if ok != 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A file's identity (volume serial, file index) and its link count.
pub(crate) fn file_identity(file: &File) -> io::Result<((u64, u64), u32)> {
    // SAFETY: plain data; all-zero is valid.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { zeroed() };
    // SAFETY: the handle is open (borrowed from `file`) and `info` is writable.
    let ok = unsafe { GetFileInformationByHandle(file.as_raw_handle() as HANDLE, &mut info) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let index = (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow);
    Ok((
        (u64::from(info.dwVolumeSerialNumber), index),
        info.nNumberOfLinks,
    ))
}
