//! Integration tests: real `lockrun` processes contending for real locks in temp dirs.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests play foreign processes that hold a lock's flock by hand; the rule that keeps
// flock calls in src/lock/flock.rs (clippy.toml) is for the product.
#![allow(clippy::disallowed_methods)]

mod testenv;

mod docs;
mod hostile;
mod jq_compat;
mod json;
mod json_bad_input;
mod json_stress;
mod reliability;
mod with;

// a lock lasts as long as its work: command trees, terminals, acquire's owner
mod lifetime;

// the etcd backend, against real etcd servers started by the tests
mod etcd;

// --name NAME on the local backend
mod names;

// status, show, cleanup, unlock, acquire, release
mod lock_admin;

// scripts/: the drop-in file-lock.sh, memory-update.sh, memory-read.sh, atomic-write.sh
mod shims;

// errors, colour, --version, completions, man page coverage, --json fields
mod manners;

// the README's recipes, taken from README.md and run as written
mod recipes;
