#!/usr/bin/env bash
# atomic-write.sh — drop-in replacement: replace FILE with stdin atomically (temp file
# beside it, fsync, rename, fsync of the directory), under FILE's lock unless
# --no-lock. Readers see the old or the new content, never a mix; the old file's mode
# (and owner, when permitted) is kept and a symlinked FILE stays a symlink. Any failure
# (disk full, a signal) leaves the old file byte for byte and no temp file behind.
# Delegates to `lockrun write` (`man lockrun`).
#
#   atomic-write.sh FILE [--no-lock] < data
#
# Environment: LOCK_TIMEOUT (seconds, default 30), LOCK_DEBUG=1, AICONFIG_PATH (locks in
# ${AICONFIG_PATH:-$HOME/aiconfig}/.locks), LOCKRUN (the lockrun binary; default: lockrun
# on PATH).
#
# Exit status. Kept: 0 the file was replaced; non-zero on any failure, with the file
# untouched. Improved (the old script said 1): 75 the lock is busy and LOCK_TIMEOUT
# expired; 2 usage error; 74 I/O error (e.g. disk full); 77 permission denied; 127
# lockrun not found.
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
  echo "Usage: $prog FILE [--no-lock] < data"
}

no_lock=()
positional=()
while [ $# -gt 0 ]; do
  case $1 in
    --no-lock) no_lock=(--no-lock) ;;
    -h | --help) usage; exit 0 ;;
    --) shift; positional+=("$@"); break ;;
    *) positional+=("$1") ;;
  esac
  shift
done
[ ${#positional[@]} -eq 1 ] || { usage >&2; exit 2; }

args=(write --lock-dir "$lock_dir" -w "$timeout" --label "$prog"
  ${no_lock[@]+"${no_lock[@]}"} -- "${positional[0]}")
[ "${LOCK_DEBUG:-0}" = 1 ] && echo "$prog: + $lockrun ${args[*]}" >&2
exec "$lockrun" "${args[@]}"
