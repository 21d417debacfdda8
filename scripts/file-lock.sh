#!/usr/bin/env bash
# file-lock.sh — drop-in replacement for the old mkdir-lock script; every operation is
# delegated to lockrun (`man lockrun`).
#
#   file-lock.sh acquire FILE          take FILE's lock for the calling shell, print its id
#   file-lock.sh release ID            release it (from the same shell)
#   file-lock.sh with FILE -- CMD...   run CMD while holding FILE's lock
#   file-lock.sh status FILE           free / held / stale (new)
#   file-lock.sh show                  list the locks
#   file-lock.sh cleanup               remove stale locks
#   file-lock.sh help
#
# Environment (as before):
#   LOCK_TIMEOUT   seconds to wait for a busy lock (default 30; fractions now allowed)
#   LOCK_RETRY     accepted and ignored: waiters no longer poll, they wake on release
#   LOCK_DEBUG=1   trace every lock step on stderr (lockrun -v)
#   AICONFIG_PATH  locks live in ${AICONFIG_PATH:-$HOME/aiconfig}/.locks, the old layout,
#                  so this script, old copies of the scripts and lockrun exclude each other
#   LOCKRUN        the lockrun binary to use (default: lockrun on PATH)
# LOCKRUN_DIR is ignored here: the lock directory is always the one above.
#
# Exit status. Kept: 0 on success; `with` exits with CMD's own status; any failure is
# non-zero, so `if file-lock.sh ...`, `|| exit` and `id=$(...) || exit` keep working.
# Improved (the old script said 1 for every failure): 75 the lock is busy and
# LOCK_TIMEOUT expired; 2 usage error (also an id that is not a lock id); 66 `release`
# of a lock that no longer exists; 77 `release` from a shell that does not own the
# lock; 73 the lock directory cannot be created; 74 I/O error; 127 lockrun not found;
# `with`: 126/127 CMD cannot be run / not found, 128+N CMD killed by signal N.
#
# What changed: the lock belongs to the shell that called `acquire` (not to this
# script's short-lived process), so a lock whose shell died is broken at once by the
# next taker, and only that shell may release it (`lockrun release --force ID` for
# anyone else). Messages come from lockrun, prefixed "lockrun: ".
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
  cat <<EOF
Usage: $prog acquire FILE          take FILE's lock for the calling shell; prints the lock id
       $prog release ID            release a lock taken with acquire (from the same shell)
       $prog with FILE -- CMD...   run CMD while holding FILE's lock
       $prog status FILE           tell whether FILE's lock is free, held or stale
       $prog show                  list the locks in $lock_dir
       $prog cleanup               remove stale locks from $lock_dir
       $prog help                  this text

Environment: LOCK_TIMEOUT (seconds, default 30), LOCK_DEBUG=1, AICONFIG_PATH,
LOCKRUN (the lockrun binary). Implemented by lockrun: see \`lockrun --help\`.
EOF
}

run() {
  [ "${LOCK_DEBUG:-0}" = 1 ] && echo "$prog: + $lockrun $*" >&2
  "$lockrun" "$@"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  acquire)
    [ $# -eq 1 ] || { usage >&2; exit 2; }
    # The caller of this script owns the lock: this script's own process exits at once.
    run acquire --owner "$PPID" --lock-dir "$lock_dir" -w "$timeout" --label "$prog" -- "$1"
    ;;
  release)
    [ $# -eq 1 ] || { usage >&2; exit 2; }
    # The owner is our caller; or this very process when the caller's shell exec'd us
    # in its place (bash does so for the last command of `bash -c '...'`): same PID,
    # same start token. lockrun checks the id and the owner; this only picks which.
    owner=$PPID
    recorded=
    [ -f "$1/info" ] && recorded=$(sed -n 's/^PID: //p' "$1/info" 2>/dev/null | head -n 1)
    [ "$recorded" = "$$" ] && owner=$$
    run release --owner "$owner" -- "$1"
    ;;
  with)
    [ $# -ge 2 ] || { usage >&2; exit 2; }
    file=$1
    shift
    [ "${1:-}" = -- ] && shift
    [ $# -ge 1 ] || { usage >&2; exit 2; }
    if [ "${LOCK_DEBUG:-0}" = 1 ]; then
      echo "$prog: + $lockrun with --lock-dir $lock_dir -w $timeout --label $prog $file -- $*" >&2
    fi
    exec "$lockrun" with --lock-dir "$lock_dir" -w "$timeout" --label "$prog" -- "$file" "$@"
    ;;
  status)
    [ $# -eq 1 ] || { usage >&2; exit 2; }
    run status --lock-dir "$lock_dir" -- "$1"
    ;;
  show | list)
    [ $# -eq 0 ] || { usage >&2; exit 2; }
    run show --lock-dir "$lock_dir"
    ;;
  cleanup | clean)
    [ $# -eq 0 ] || { usage >&2; exit 2; }
    run cleanup --lock-dir "$lock_dir"
    ;;
  help | -h | --help)
    usage
    ;;
  *)
    if [ -n "$cmd" ]; then
      echo "$prog: unknown command '$cmd'" >&2
    fi
    usage >&2
    exit 2
    ;;
esac
