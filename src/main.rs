//! The `lockrun` executable; everything lives in the library.
//!
//! On Linux with glibc this file defines the C `main` itself instead of a Rust `fn main`.
//! That skips std's start-up work, which a tool started thousands of times a day pays on
//! every run and does not need: placing a main-thread stack guard means reading and
//! parsing /proc/self/maps, about a tenth of lockrun's start-up CPU.
//! `lockrun::process_setup` does the parts lockrun relies on (SIGPIPE ignored, closed
//! standard descriptors reopened on /dev/null).
//!
//! Only there: std still finds the arguments because glibc passes them to the
//! functions of `.init_array`, which std uses; musl, the BSDs and Android do not, and
//! there `std::env::args_os()` would be empty without std's own start-up. Elsewhere the
//! usual `fn main` runs, with std's start-up (which does the same setup itself).
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

#[cfg(all(target_os = "linux", target_env = "gnu", not(test)))]
// SAFETY: this is the executable's only `main` symbol, called once by the C runtime with
// the process arguments (which std reads on its own on glibc; the pointers are not used
// here).
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    lockrun::process_setup();
    std::process::exit(lockrun::run(std::env::args_os()))
}

// Elsewhere, and for `cargo test` (whose harness brings its own `main`).
#[cfg(not(all(target_os = "linux", target_env = "gnu", not(test))))]
fn main() {
    lockrun::process_setup();
    std::process::exit(lockrun::run(std::env::args_os()));
}
