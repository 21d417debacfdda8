//! A deep stack for the JSON commands, and a guard that turns runaway filter recursion
//! into an error.
//!
//! Parsing, printing, comparing and dropping a document recurse once per nesting level,
//! and so do jaq's parser, compiler and evaluator on a filter. At lockrun's nesting
//! limit (4096 levels) that needs more than the 8 MiB a main thread usually has, and a
//! filter can recurse without end (`def f: [f]; f`) or build a value a million levels
//! deep (`reduce range(1e6) as $i (1; [.])`). So the JSON commands run on a thread
//! whose stack is reserved large ([`STACK_SIZE`]; only the pages used are ever
//! committed), and every filter definition the user or jq's library defines is entered
//! through [`guard`], which fails the filter once it has used [`budget`] of that stack:
//! the error ends the run like any other filter error (exit 65, nothing written, the
//! lock released), and what is left of the stack is room for the natives (`tojson`,
//! comparisons, dropping a deep value) that recurse over a value the filter built.

use std::cell::Cell;
use std::sync::Mutex;

/// The stack reserved for the JSON thread.
pub const STACK_SIZE: usize = if cfg!(target_pointer_width = "64") {
    1 << 30
} else {
    256 << 20
};

thread_local! {
    /// (address near the top of this thread's stack, its size) on the JSON thread.
    static STACK: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

/// Runs `f` on a thread with a [`STACK_SIZE`] stack (smaller ones are tried when the
/// system refuses to reserve that much; as a last resort `f` runs here, with
/// the guard measuring against the current thread's unknown stack as 8 MiB).
pub fn with_deep_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let slot = Mutex::new(Some(f));
    let take = || slot.lock().ok().and_then(|mut s| s.take());
    for size in [STACK_SIZE, STACK_SIZE / 4, STACK_SIZE / 16] {
        let outcome = std::thread::scope(|scope| {
            let spawned = std::thread::Builder::new()
                .name("lockrun".into())
                .stack_size(size)
                .spawn_scoped(scope, || {
                    let f = take()?;
                    mark(size);
                    Some(f())
                });
            spawned.ok().map(|handle| match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            })
        });
        if let Some(Some(result)) = outcome {
            return result;
        }
    }
    let f = take().unwrap_or_else(|| unreachable!("the closure runs at most once"));
    mark(8 << 20);
    f()
}

fn mark(size: usize) {
    let here = 0u8;
    STACK.with(|s| s.set(Some((std::ptr::addr_of!(here) as usize, size))));
}

/// How much of the stack a filter may use before [`guard`] stops it: an eighth.
pub fn budget(size: usize) -> usize {
    size / 8
}

/// Whether the calling thread has used more than its [`budget`]; false where
/// [`with_deep_stack`] did not start the thread.
pub fn over_budget() -> bool {
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    STACK.with(|s| match s.get() {
        Some((top, size)) => top.abs_diff(sp) > budget(size),
        None => false,
    })
}

/// The message of a filter stopped by the guard.
pub const TOO_DEEP: &str = "the filter recursed too deep";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_a_deep_stack_and_measures_it() {
        let (deep, over) = with_deep_stack(|| {
            fn dive(n: usize) -> bool {
                let pad = [0u8; 1024];
                if n == 0 {
                    return over_budget();
                }
                let r = dive(n - 1);
                std::hint::black_box(&pad);
                r
            }
            (dive(10_000), dive(STACK_SIZE / 1024 / 6))
        });
        assert!(!deep);
        assert!(over);
        assert!(!over_budget(), "not on the JSON thread");
    }
}
