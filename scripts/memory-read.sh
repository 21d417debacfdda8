#!/usr/bin/env bash
# memory-read.sh — drop-in replacement: print a JSON file, pretty-printed (2-space indent)
# by default, or as stored with --raw, under a shared lock (readers run together; a
# writer's replace is atomic, so a read never sees half a file). Delegates to
# `lockrun read` (`man lockrun`).
#
#   memory-read.sh FILE [--raw]
#
# Environment: LOCK_TIMEOUT (seconds, default 30), LOCK_DEBUG=1, AICONFIG_PATH (locks in
# ${AICONFIG_PATH:-$HOME/aiconfig}/.locks), LOCKRUN (the lockrun binary; default: lockrun
# on PATH).
#
# Exit status. Kept: 0 the file was printed; non-zero on any failure. Improved (the old
# script said 1, or whatever jq said): 66 FILE does not exist; 65 FILE is not valid JSON
# (nothing is printed: no half output); 75 a writer held the lock past LOCK_TIMEOUT;
# 2 usage error; 74 I/O error; 77 permission denied; 127 lockrun not found.
set -u

prog=${0##*/}
lockrun=${LOCKRUN:-$(command -v lockrun 2>/dev/null || true)}
if [ -z "$lockrun" ]; then
  echo "$prog: lockrun not found on PATH (install it, or set LOCKRUN=/path/to/lockrun)" >&2
  exit 127
fi
lock_dir="${AICONFIG_PATH:-$HOME/aiconfig}/.locks"
timeout=${LOCK_TIMEOUT:-30}
case $timeout in
  inf) ;;
  '' | *[!0-9.]*) echo "$prog: LOCK_TIMEOUT='$timeout' is not a number of seconds" >&2; exit 2 ;;
esac
[ "${LOCK_DEBUG:-0}" = 1 ] && export LOCKRUN_DEBUG=1

usage() {
  echo "Usage: $prog FILE [--raw]"
}

raw=0
positional=()
while [ $# -gt 0 ]; do
  case $1 in
    --raw | -r) raw=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; positional+=("$@"); break ;;
    *) positional+=("$1") ;;
  esac
  shift
done
[ ${#positional[@]} -eq 1 ] || { usage >&2; exit 2; }

args=(read --lock-dir "$lock_dir" -w "$timeout" --label "$prog" -- "${positional[0]}")
# The pointer "" is the whole document, printed pretty; without it, as stored.
[ $raw = 1 ] || args+=("")
[ "${LOCK_DEBUG:-0}" = 1 ] && echo "$prog: + $lockrun ${args[*]}" >&2
exec "$lockrun" "${args[@]}"
