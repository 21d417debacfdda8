//! The reader gate `<hex>.rw` of shared locks: shared holders keep `LOCK_SH` on it,
//! and an exclusive taker waits for them to drain.

use std::fs::File;
use std::io::{self, Read};

use super::dir;
use super::info;

/// A shared holder's SIGKILLed lockrun drops its LOCK_SH while its command tree may
/// still run, so readers record their commands in the gate (`CHILD:` lines with
/// `CHILD_PGID:`, as `with` does in `info`). Whoever finds the gate free of readers,
/// with the dir lock held, ends what remains of the recorded groups and then empties
/// the list.
pub(super) fn settle_gate(gate: &File, writable: bool) -> io::Result<()> {
    let mut text = String::new();
    gate.take(info::MAX_INFO_BYTES * 64)
        .read_to_string(&mut text)?;
    if text.is_empty() {
        return Ok(());
    }
    for child in info::children(&text) {
        if let Some(start) = &child.start {
            dir::end_orphaned_command(child.pid, start, child.pgid);
        }
    }
    if writable {
        gate.set_len(0)?;
    }
    Ok(())
}
