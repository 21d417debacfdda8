#!/usr/bin/env bash
# Benchmarks lockrun against flock(1): medians and ratios in one Markdown table.
#   scripts/bench.sh           full run (a few minutes)
#   scripts/bench.sh --quick   short run, as CI does
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec python3 scripts/bench.py --bin target/release/lockrun "$@"
