#!/usr/bin/env bash
# memory-update.sh — drop-in replacement: apply a jq filter to a JSON file, validated and
# atomic, under the file's lock. Delegates to `lockrun update` (`man lockrun`).
#
#   memory-update.sh FILE FILTER [--backup] [--arg NAME VALUE]... [--argjson NAME JSON]...
#
# The filter runs in lockrun's embedded jq engine (jaq; no jq binary needed; see
# `lockrun update --help` for the few differences from jq). It must yield exactly one
# value; the result must be valid JSON; otherwise nothing is written. A missing FILE
# starts as {} (its parent directory must exist). --backup saves the old file as FILE~
# first. The file keeps its layout (compact stays compact, indent kept) and its mode.
#
# Environment: LOCK_TIMEOUT (seconds, default 30), LOCK_DEBUG=1, AICONFIG_PATH (locks in
# ${AICONFIG_PATH:-$HOME/aiconfig}/.locks, shared with file-lock.sh and the old
# scripts), LOCKRUN (the lockrun binary; default: lockrun on PATH).
#
# Exit status. Kept: 0 the file was updated (or already equal to the result); non-zero
# on any failure, with the file untouched. Improved (the old script said 1, or whatever
# jq said): 65 invalid JSON in FILE or --argjson, a filter that fails or does not yield
# exactly one value; 75 the lock is busy and LOCK_TIMEOUT expired; 2 usage error;
# 73 the lock directory cannot be created; 74 I/O error (disk full: the old file stays
# byte for byte); 77 permission denied; 127 lockrun not found.
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
  echo "Usage: $prog FILE FILTER [--backup] [--arg NAME VALUE]... [--argjson NAME JSON]..."
}

positional=()
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --backup) extra+=(--backup) ;;
    --arg | --argjson)
      [ $# -ge 3 ] || { usage >&2; exit 2; }
      extra+=("$1" "$2" "$3")
      shift 2
      ;;
    -h | --help) usage; exit 0 ;;
    --) shift; positional+=("$@"); break ;;
    *) positional+=("$1") ;;
  esac
  shift
done
[ ${#positional[@]} -eq 2 ] || { usage >&2; exit 2; }

args=(update --lock-dir "$lock_dir" -w "$timeout" --label "$prog" --create '{}'
  ${extra[@]+"${extra[@]}"} -- "${positional[0]}" "${positional[1]}")
[ "${LOCK_DEBUG:-0}" = 1 ] && echo "$prog: + $lockrun ${args[*]}" >&2
exec "$lockrun" "${args[@]}"
