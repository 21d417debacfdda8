#!/usr/bin/env bash
# Builds lockrun and its integration tests for Windows (x86_64-pc-windows-gnu) and runs
# the cases that are platform-independent (see the list below, plus the Windows unit
# tests of src/sys) under Wine, in a fresh throw-away Wine prefix.
#
#   scripts/wine-test.sh [extra libtest args...]
#
# Needs: wine (Debian's wine + wine64), x86_64-w64-mingw32-gcc (gcc-mingw-w64-x86-64) and
# the rustup target x86_64-pc-windows-gnu. .ci/run installs them.
#
# Wine 8 (Debian 12) has no bcryptprimitives.dll, whose ProcessPrng Rust's std imports,
# so a Rust .exe dies at start (c0000135). scripts/wine/bcryptprimitives.c is a stand-in
# built here with the mingw compiler into the prefix's system32; nothing ships it.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-pc-windows-gnu
wine=$(command -v wine || command -v wine64 || true)
missing=()
[ -n "$wine" ] || missing+=("wine (apt-get install wine wine64)")
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=("x86_64-w64-mingw32-gcc (apt-get install gcc-mingw-w64-x86-64)")
rustup target list --installed 2>/dev/null | grep -qx "$target" ||
  missing+=("the $target target (rustup target add $target)")
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'wine-test.sh: missing %s\n' "${missing[@]}" >&2
  exit 69
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lockrun-wine.XXXXXX")
export WINEPREFIX="$work/prefix" WINEDEBUG=-all WINEARCH=win64
# No desktop integration, no Mono/Gecko installer prompts in a headless run.
export WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d"
cleanup() {
  # Ends every process of this prefix (ours only: the prefix is private to this run).
  wineserver -k >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

start=$(date +%s)
wineboot -i >"$work/wineboot.log" 2>&1 || { cat "$work/wineboot.log" >&2; exit 1; }
wineserver -w
echo "wine-test: prefix ready in $(($(date +%s) - start)) s ($("$wine" --version))"

x86_64-w64-mingw32-gcc -shared -O2 -s -Wall -Werror \
  -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
  scripts/wine/bcryptprimitives.c -lbcrypt

build_start=$(date +%s)
cargo test --target "$target" --test cli --lib --no-run
echo "wine-test: Windows build in $(($(date +%s) - build_start)) s"

# cargo runs each test executable through the runner; the tests then start lockrun.exe
# and their helper as Windows processes inside the same Wine session.
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$wine"
run_start=$(date +%s)
# The platform module's own unit tests, then the integration cases that run on Windows
# too: portable.rs (locks, with, acquire, shared readers, sharing violations), names.rs
# (--name), json.rs / jq_compat.rs (the JSON commands) and json_bad_input.rs (bad
# input: one line, the documented exit code, nothing changed).
timeout 300 cargo test --target "$target" --lib -- sys::
timeout 900 cargo test --target "$target" --test cli -- \
  portable:: names:: json:: jq_compat:: json_bad_input:: "$@"
echo "wine-test: Windows suite in $(($(date +%s) - run_start)) s, $(($(date +%s) - start)) s in all"
