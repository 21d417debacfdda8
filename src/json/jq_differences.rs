//! What a user of `memory-update.sh FILE '<jq filter>'` may notice when the same filter
//! runs in lockrun's embedded jaq instead of jq. Shown in `update --help` and the man
//! page; each claim is checked by a test in tests/cli/json.rs.

/// The long help of `update`.
pub const UPDATE_LONG_ABOUT: &str = "Apply a jq filter to a JSON file under its lock.

TODO";
