//! The `lockrun` executable; everything lives in the library.
//!
//! On Unix this file defines the C `main` itself instead of a Rust `fn main`. That skips
//! std's start-up work, which a tool started thousands of times a day pays on every run
//! and does not need: placing a main-thread stack guard means reading and parsing
//! /proc/self/maps, about a tenth of lockrun's start-up CPU. `lockrun::process_setup` does
//! the one part lockrun relies on (SIGPIPE ignored).
#![cfg_attr(all(unix, not(test)), no_main)]

#[cfg(all(unix, not(test)))]
// SAFETY: this is the executable's only `main` symbol, called once by the C runtime with
// the process arguments (which std reads on its own; the pointers are not used here).
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    lockrun::process_setup();
    std::process::exit(lockrun::run(std::env::args_os()))
}

// Elsewhere, and for `cargo test` (whose harness brings its own `main`).
#[cfg(any(not(unix), test))]
fn main() {
    std::process::exit(lockrun::run(std::env::args_os()));
}
