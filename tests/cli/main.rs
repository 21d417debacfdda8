//! Integration tests: real `lockrun` processes contending for real locks in temp dirs.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests play foreign processes that hold a lock's flock by hand; the rule that keeps
// flock calls in src/lock/flock.rs (clippy.toml) is for the product.
#![allow(clippy::disallowed_methods)]

mod testenv;

// The test suite's own command for portable cases, and the cases that run on Linux and
// on Windows (under Wine in CI: scripts/wine-test.sh) alike. The other modules use sh
// and Unix signals.
mod helper;
mod portable;

#[cfg(unix)]
mod docs;
#[cfg(unix)]
mod hostile;
mod jq_compat;
mod json;
mod json_bad_input;
#[cfg(unix)]
mod json_stress;
#[cfg(unix)]
mod reliability;
#[cfg(unix)]
mod with;

// a lock lasts as long as its work: command trees, terminals, acquire's owner
#[cfg(unix)]
mod lifetime;

// the etcd backend, against real etcd servers started by the tests (the backend is
// built on Unix only; portable.rs checks that Windows refuses it)
#[cfg(unix)]
mod etcd;

// --name NAME on the local backend
mod names;

// status, show, cleanup, unlock, acquire, release
#[cfg(unix)]
mod lock_admin;

// scripts/: the drop-in file-lock.sh, memory-update.sh, memory-read.sh, atomic-write.sh
#[cfg(unix)]
mod shims;

// errors, colour, --version, completions, man page coverage, --json fields
#[cfg(unix)]
mod manners;

// the README's recipes, taken from README.md and run as written
#[cfg(unix)]
mod recipes;
