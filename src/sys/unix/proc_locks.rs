//! Who holds flock(2) locks on a file, from Linux `/proc/locks`.
//!
//! Lines look like `1: FLOCK  ADVISORY  READ 19048 fe:00:10018942 0 EOF`; a blocked
//! request has `->` after the number. The device is `major:minor` in hex, the inode
//! in decimal.

use std::io;

/// One flock(2) lock (or a blocked request for one) on the file asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlockHolder {
    pub(crate) pid: u32,
    /// `LOCK_SH` (READ) rather than `LOCK_EX` (WRITE).
    pub(crate) shared: bool,
    /// A request still waiting for the lock, not a holder.
    pub(crate) waiting: bool,
}

/// The flock(2) locks on the file with device `dev` and inode `ino`. Errors with
/// `Unsupported` where the OS has no `/proc/locks`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn flock_holders(dev: u64, ino: u64) -> io::Result<Vec<FlockHolder>> {
    let text = std::fs::read_to_string("/proc/locks")?;
    let want = (rustix::fs::major(dev), rustix::fs::minor(dev), ino);
    Ok(text
        .lines()
        .filter_map(parse_line)
        .filter(|(id, _)| *id == want)
        .map(|(_, holder)| holder)
        .collect())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn flock_holders(_dev: u64, _ino: u64) -> io::Result<Vec<FlockHolder>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no /proc/locks on this platform",
    ))
}

#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
/// Parses one FLOCK line into ((major, minor, inode), holder); other lock kinds and
/// malformed lines give `None`.
fn parse_line(line: &str) -> Option<((u32, u32, u64), FlockHolder)> {
    let mut words = line.split_whitespace().skip(1).peekable();
    let waiting = words.peek() == Some(&"->");
    if waiting {
        words.next();
    }
    if words.next()? != "FLOCK" {
        return None;
    }
    let _advisory = words.next()?;
    let shared = match words.next()? {
        "READ" => true,
        "WRITE" => false,
        _ => return None,
    };
    let pid: u32 = words.next()?.parse().ok()?;
    let mut id = words.next()?.split(':');
    let major = u32::from_str_radix(id.next()?, 16).ok()?;
    let minor = u32::from_str_radix(id.next()?, 16).ok()?;
    let ino: u64 = id.next()?.parse().ok()?;
    Some((
        (major, minor, ino),
        FlockHolder {
            pid,
            shared,
            waiting,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_holders_and_waiters() {
        let (id, h) = parse_line("1: FLOCK  ADVISORY  READ 19048 fe:00:10018942 0 EOF")
            .expect("a flock line");
        assert_eq!(id, (0xfe, 0, 10018942));
        assert_eq!(
            h,
            FlockHolder {
                pid: 19048,
                shared: true,
                waiting: false
            }
        );
        let (_, h) =
            parse_line("2: -> FLOCK  ADVISORY  WRITE 7 08:01:12 0 EOF").expect("a waiter line");
        assert!(h.waiting && !h.shared && h.pid == 7);
        assert!(parse_line("3: POSIX  ADVISORY  WRITE 7 08:01:12 0 EOF").is_none());
        assert!(parse_line("garbage").is_none());
    }
}
