//! One wait for a busy lock: when to give up, when to say (once) that we are waiting,
//! and the busy error when the wait is over.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use super::flock;
use super::format_age;
use crate::error::{Error, Result};

/// The state of one wait: when to give up, when to say we are waiting.
pub(super) struct Waiting<'a> {
    started: Instant,
    deadline: Option<Instant>,
    notice_at: Option<Instant>,
    target: &'a Path,
    /// The wait asked for (`None`: forever), for the busy error's words.
    timeout: Option<Duration>,
}

impl<'a> Waiting<'a> {
    pub(super) fn new(
        started: Instant,
        deadline: Option<Instant>,
        notice_after: Option<Duration>,
        target: &'a Path,
        timeout: Option<Duration>,
    ) -> Self {
        Waiting {
            started,
            deadline,
            notice_at: notice_after.map(|d| started + d),
            target,
            timeout,
        }
    }

    /// The target file the lock is for.
    pub(super) fn target(&self) -> &Path {
        self.target
    }

    pub(super) fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Prints the "waiting" line once, when its time has come.
    pub(super) fn maybe_notice(&mut self, holder: &str) {
        if let Some(at) = self.notice_at
            && Instant::now() >= at
        {
            crate::quote::say(&format!(
                "waiting for {}, held by {holder}",
                self.target.display()
            ));
            self.notice_at = None;
        }
    }

    /// The next moment the wait must stop to look around.
    pub(super) fn wake_by(&self) -> Option<Instant> {
        match (self.deadline, self.notice_at) {
            (Some(d), Some(n)) => Some(d.min(n)),
            (d, n) => d.or(n),
        }
    }

    /// Blocks on `file`'s flock (shared or exclusive) until it is granted or the wait
    /// expires; returns whether it was granted. The flock is given back at once.
    pub(super) fn wait_on(&mut self, file: &File, exclusive: bool, holder: &str) -> Result<bool> {
        loop {
            self.maybe_notice(holder);
            match flock::wait_flock(file, exclusive, self.wake_by()) {
                Ok(true) => return Ok(true),
                Ok(false) if self.expired() => return Ok(false),
                Ok(false) => continue,
                Err(e) => return Err(Error::io(self.target, e)),
            }
        }
    }

    pub(super) fn busy_error(&self, holder: String) -> Error {
        let waited = match self.timeout {
            Some(t) if t.is_zero() => "one try (-n)".to_string(),
            Some(t) => format_age(t),
            None => format_age(self.started.elapsed()),
        };
        Error::Busy {
            target: self.target.to_path_buf(),
            holder,
            waited,
            conflict_code: None,
        }
    }
}
