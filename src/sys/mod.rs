//! Platform code behind one interface: the rest of lockrun calls `crate::sys::...` and
//! never names a platform. Each platform is one module (`sys/unix`, `sys/windows`) that provides the items re-exported here. Every
//! `unsafe` block of lockrun lives under `sys/`, each with a `// SAFETY:` comment.

#[cfg(unix)]
mod unix;

#[cfg(unix)]
pub(crate) use unix::{
    PidState, SignalMask, boot_id, close_inherited_descriptors, current_pid, current_uid,
    file_size_limit, hostname, ignore_file_size_signal, owner, parent_pid, pid_state, proc_locks,
    process_command, process_is_running, process_setup, process_start_token, rename_noreplace,
    set_close_on_exec, set_inheritable, spawn, tree,
};

#[cfg(windows)]
mod windows;

#[cfg(windows)]
pub(crate) use windows::{
    LockHolder, PidState, boot_id, current_pid, current_uid, file_size_limit, hostname,
    ignore_file_size_signal, job, local_app_data, lock_files, owner, parent_pid, path, pid_state,
    process_command, process_is_running, process_setup, process_start_token, rename_noreplace,
    replace,
};

/// What Rust's own start-up would have done that lockrun relies on; nothing elsewhere.
#[cfg(not(any(unix, windows)))]
pub(crate) fn process_setup() {}
