//! Integration tests: real `lockrun` processes contending for real locks in temp dirs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod testenv;

mod docs;
mod json;
mod json_bad_input;
mod json_stress;
mod reliability;
mod with;

// status, show, cleanup, unlock, acquire, release
mod introspect;
