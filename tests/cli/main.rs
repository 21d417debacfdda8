//! Integration tests: real `lockrun` processes contending for real locks in temp dirs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod testenv;

mod docs;
mod with;

// status, show, cleanup, unlock, acquire, release
mod introspect;
