//! The hidden `etcd-keeper` subcommand: the process `acquire --backend etcd://...` leaves
//! behind to keep its lease alive while the owner shell lives.

use std::ffi::OsString;

use clap::Args;

use super::BackendArgs;

#[derive(Debug, Clone, Args)]
pub(crate) struct KeeperArgs {
    #[command(flatten)]
    pub(crate) backend: BackendArgs,

    /// The lease to keep alive (16 hex digits).
    #[arg(long, value_name = "HEX")]
    pub(crate) lease: String,

    /// The lock key attached to it.
    #[arg(long, value_name = "KEY")]
    pub(crate) key: OsString,

    /// The key's creation revision (the fencing token).
    #[arg(long, value_name = "N")]
    pub(crate) revision: i64,

    /// The shell the lock belongs to: the lease is revoked when it exits.
    #[arg(long, value_name = "PID")]
    pub(crate) owner: u32,

    /// The owner's start token, so that a reused PID is not taken for it.
    #[arg(long, value_name = "TOKEN")]
    pub(crate) owner_start: Option<String>,
}
