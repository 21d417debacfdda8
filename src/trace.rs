//! `-v` / `LOCKRUN_DEBUG=1`: one stderr line per lock step, stamped with the time since
//! start, so a slow or stuck run can be explained after the fact.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static ENABLED: AtomicBool = AtomicBool::new(false);
static START: OnceLock<Instant> = OnceLock::new();

pub(crate) fn enable() {
    START.get_or_init(Instant::now);
    ENABLED.store(true, Ordering::Relaxed);
}

pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Prints one trace line when tracing is on; the message is built only then.
pub(crate) fn step(message: impl FnOnce() -> String) {
    if enabled() {
        let start = START.get_or_init(Instant::now);
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        // The wall-clock stamp lets lines of different processes be put in order (the
        // benchmark measures release-to-handoff latency with it).
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        crate::quote::say(&format!("[{ms:9.3} ms @{wall:.6}] {}", message()));
    }
}
