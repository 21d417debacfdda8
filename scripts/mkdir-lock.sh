#!/usr/bin/env bash
# Baseline for scripts/bench.sh: the mkdir lock of the bash scripts lockrun replaces
# (file-lock.sh and friends), written for the benchmark. Not for use.
#   mkdir-lock.sh [-n] LOCKDIR CMD [ARGS...]
# Takes LOCKDIR with mkdir, writes its PID inside, runs CMD, removes LOCKDIR. A busy lock
# is polled every 100 ms; one whose PID is gone (kill -0 fails) is removed with rm -rf
# and retried; -n gives up at once with exit 75.
nonblock=0
if [ "$1" = "-n" ]; then nonblock=1; shift; fi
d=$1; shift
while ! mkdir "$d" 2>/dev/null; do
  pid=$(cat "$d/pid" 2>/dev/null)
  if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
    rm -rf "$d"
    continue
  fi
  [ "$nonblock" = 1 ] && exit 75
  sleep 0.1
done
echo $$ > "$d/pid"
"$@"
rc=$?
rm -rf "$d"
exit $rc
