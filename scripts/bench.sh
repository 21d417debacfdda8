#!/usr/bin/env bash
# Benchmarks every bar of lockrun-protocol(5) (MEASURED) in one run: lockrun against
# flock(1), flock + jq + mv, and a bash mkdir lock (scripts/mkdir-lock.sh); medians and ratios in one Markdown table
# on stdout (progress on stderr).
#   scripts/bench.sh           full run (several minutes)
#   scripts/bench.sh --quick   short run, as CI does
#   scripts/bench.sh --etcd-only   only the etcd backend against etcdctl lock (skipped,
#                                  with its reason, when etcd is not installed)
# Needs python3, flock (util-linux) and jq; etcd-server and etcd-client for the etcd rows.
set -euo pipefail
cd "$(dirname "$0")/.."
# The executable as it ships (scripts/build.sh: static-pie on Linux/glibc).
bin=$(scripts/build.sh)
exec python3 scripts/bench.py --bin "$bin" "$@"
