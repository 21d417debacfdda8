//! Who holds a key's reader gate `<hex>.rw` shared: from Linux `/proc/locks` where the
//! OS tells, on Windows from the readers' own records in the gate, else only whether
//! anyone does.

use std::fs;
use std::io;
use std::path::Path;

use super::flock;
use crate::sys;

/// Processes holding `LOCK_SH` on a key's `<hex>.rw` gate (shared lockrun holders).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Readers {
    /// Their PIDs, where the OS tells (Linux `/proc/locks`).
    pub(crate) pids: Vec<u32>,
    /// Readers are present but the OS cannot say who they are.
    pub(crate) unknown: bool,
}

impl Readers {
    pub(crate) fn any(&self) -> bool {
        self.unknown || !self.pids.is_empty()
    }
}

/// The shared holders of the gate at `rw_path`.
pub(crate) fn readers(rw_path: &Path) -> io::Result<Readers> {
    let meta = match fs::symlink_metadata(rw_path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Readers::default()),
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        return Ok(Readers::default());
    }
    #[cfg(unix)]
    let holders = {
        use std::os::unix::fs::MetadataExt;
        sys::proc_locks::flock_holders(meta.dev(), meta.ino())
    };
    // Windows cannot list who holds a byte-range lock: the try below tells whether any
    // reader does, and the gate's records who.
    #[cfg(windows)]
    let holders: io::Result<Vec<sys::LockHolder>> =
        Err(io::Error::from(io::ErrorKind::Unsupported));
    match holders {
        Ok(holders) => {
            let mut pids: Vec<u32> = holders
                .iter()
                .filter(|h| h.shared && !h.waiting)
                .map(|h| h.pid)
                .collect();
            pids.sort_unstable();
            pids.dedup();
            Ok(Readers {
                pids,
                unknown: false,
            })
        }
        Err(_) => {
            // No /proc/locks: a try of LOCK_EX tells whether anyone holds LOCK_SH.
            let file = match flock::open_file_nofollow(rw_path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Readers::default()),
                Err(e) => return Err(e),
            };
            if flock::try_lock(&file)? {
                return Ok(Readers::default());
            }
            // Windows: the readers named themselves in the gate (`note_reader`).
            #[cfg(windows)]
            let pids = flock::live_readers(&file)?;
            #[cfg(not(windows))]
            let pids = Vec::new();
            Ok(Readers {
                unknown: pids.is_empty(),
                pids,
            })
        }
    }
}
