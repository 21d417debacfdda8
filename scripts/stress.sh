#!/usr/bin/env bash
# Torture run: P processes for N seconds mixing `with` (exclusive and shared), `update`,
# `acquire`/`release` and `cleanup` on one file, with random kill -9 of holders; checks
# every invariant at the end and prints one summary line (exit 1 on any violation).
#   scripts/stress.sh [--seconds N] [--procs P] [--kill-every MS] [--seed S] [--keep]
# See scripts/stress.py for what is checked and how.
set -euo pipefail
cd "$(dirname "$0")/.."
# The executable as it ships (scripts/build.sh: static-pie on Linux/glibc).
bin=$(scripts/build.sh)
exec python3 scripts/stress.py --bin "$bin" "$@"
