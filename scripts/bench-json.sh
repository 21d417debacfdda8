#!/bin/sh
# JSON update benchmarks: lockrun update vs flock + jq + mv.
#   scripts/bench-json.sh [N_UNCONTENDED] [N_PER_PROC] [BIG_MB]
# Needs a release build (cargo build --release), jq, flock, GNU time (/usr/bin/time).
set -eu
N=${1:-200}
PER=${2:-250}
MB=${3:-50}
BIN=${LOCKRUN:-$(cd "$(dirname "$0")/.." && pwd)/target/release/lockrun}
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cd "$DIR"

now() { date +%s%N; }
per_ms() { echo "scale=3; ($2 - $1) / 1000000 / $3" | bc; }

echo "== uncontended: $N sequential updates"
echo '{"n": 0}' > a.json
t0=$(now); i=0; while [ $i -lt $N ]; do "$BIN" update a.json '.n += 1'; i=$((i+1)); done; t1=$(now)
echo "lockrun update:        $(per_ms $t0 $t1 $N) ms/update  (n=$(jq .n a.json))"
echo '{"n": 0}' > b.json
t0=$(now); i=0; while [ $i -lt $N ]; do flock b.json sh -c 'jq ".n += 1" b.json > b.json.tmp && mv b.json.tmp b.json'; i=$((i+1)); done; t1=$(now)
echo "flock+jq+mv:           $(per_ms $t0 $t1 $N) ms/update  (n=$(jq .n b.json))"

echo "== contended: 4 processes x $PER updates"
echo '{"n": 0}' > c.json
t0=$(now)
for p in 1 2 3 4; do
  ( i=0; while [ $i -lt $PER ]; do "$BIN" update -w 60 c.json '.n += 1'; i=$((i+1)); done ) &
done
wait; t1=$(now)
echo "lockrun update:        $(per_ms $t0 $t1 $((4*PER))) ms/update wall  (n=$(jq .n c.json), want $((4*PER)))"
echo '{"n": 0}' > d.json
t0=$(now)
for p in 1 2 3 4; do
  ( i=0; while [ $i -lt $PER ]; do flock d.lock sh -c 'jq ".n += 1" d.json > d.json.tmp && mv d.json.tmp d.json'; i=$((i+1)); done ) &
done
wait; t1=$(now)
echo "flock+jq+mv:           $(per_ms $t0 $t1 $((4*PER))) ms/update wall  (n=$(jq .n d.json), want $((4*PER)))"

echo "== ${MB} MB document: one update"
python3 - "$MB" <<'PY'
import json, sys
mb = int(sys.argv[1])
items = []
size = 0
i = 0
while size < mb * 1000000:
    item = {"id": i, "name": "session-%d" % i, "score": i * 1.5, "tags": ["a", "b", "c"], "ok": i % 2 == 0}
    items.append(item)
    size += len(json.dumps(item)) + 6
    i += 1
with open("big.json", "w") as f:
    json.dump({"n": 0, "items": items}, f, indent=2)
PY
ls -l big.json | awk '{printf "size: %.1f MB\n", $5/1000000}'
cp big.json big2.json
/usr/bin/time -f "lockrun update:        %e s wall, %M KB peak RSS" "$BIN" update big.json '.n += 1'
/usr/bin/time -f "jq (+flock, mv):       %e s wall, %M KB peak RSS" flock big2.json sh -c 'jq ".n += 1" big2.json > big2.json.tmp && mv big2.json.tmp big2.json'
