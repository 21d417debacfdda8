//! The etcd lock backend: locks kept in an etcd cluster, for hosts that share no disk.

pub mod config;
pub mod gateway;
pub mod lock;
