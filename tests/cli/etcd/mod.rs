//! The etcd backend against real etcd servers (see `fixture`): each test starts its own
//! etcd on 127.0.0.1 (free ports, temp data dir) and it is gone when the test ends.
//! `harness` has what the tests share: lockrun and shells pointed at an etcd, holders,
//! waiters and the checks of how they end.

pub mod fixture;
pub mod harness;

mod acquire;
mod basics;
mod failures;
mod listing;
mod protocol;
mod robust;
mod scale;
mod secure;
mod selftest;
