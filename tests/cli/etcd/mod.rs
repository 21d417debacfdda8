//! The etcd backend against real etcd servers (see `fixture`).

pub mod fixture;

mod harness;
