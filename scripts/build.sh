#!/usr/bin/env bash
# Builds lockrun the way it ships. On Linux with glibc that is a static-pie executable:
# it starts without the dynamic loader (no shared libraries to map, no symbol lookups,
# no libgcc_s CPU probe), which saves about 0.5 ms on every call (measured with
# interleaved runs, see README "Performance"); a hook that runs lockrun on every edit
# pays start-up more than anything else. Elsewhere it is a plain release build.
#
#   scripts/build.sh                 build; prints the path of the executable
#   scripts/build.sh --install [...] cargo install it (into ~/.cargo/bin), extra
#                                    arguments go to cargo install
#   scripts/build.sh --test [...]    cargo test against that build: the integration
#                                    tests run the executable as it ships
#                                    (LOCKRUN_TEST_BIN), not a debug build
set -euo pipefail
cd "$(dirname "$0")/.."

host=$(rustc -vV | sed -n 's/^host: //p')
# The caller's flags, for the test harness (which must not be static: proc-macros).
caller_rustflags="${RUSTFLAGS:-}"
target=()
out=target/release/lockrun
case "$host" in
  *-linux-gnu*)
    # --target keeps the flag to our crates: build scripts and proc-macros run on the
    # host and cannot be static.
    export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
    target=(--target "$host")
    out="target/$host/release/lockrun"
    ;;
esac

case "${1:-}" in
  --install)
    shift
    exec cargo install --path . --locked "${target[@]}" "$@"
    ;;
  --test)
    shift
    cargo build --release --locked --quiet "${target[@]}"
    RUSTFLAGS="$caller_rustflags" LOCKRUN_TEST_BIN="$PWD/$out" exec cargo test "$@"
    ;;
  "")
    cargo build --release --locked --quiet "${target[@]}"
    echo "$out"
    ;;
  *)
    echo "usage: scripts/build.sh [--install [cargo install args] | --test [cargo test args]]" >&2
    exit 2
    ;;
esac
