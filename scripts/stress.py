#!/usr/bin/env python3
"""lockrun torture run: P workers for N seconds mixing `with` (exclusive and shared, with
a plain and a forking command), `update`, `acquire`/`release` and `cleanup` on one file
while a killer sends SIGKILL to random in-flight operations. A forking command runs its
critical section in a background child (`sh -c 'sh -c SECTION & wait'`): when lockrun
alone is killed, that child runs on until the next taker ends the dead holder's group. Run through scripts/stress.sh (which builds the binary).

Invariants, checked at the end and printed as one summary line (exit 1 on a violation):
- occupancy: every critical section registers itself with `mkdir occ/<W|R>.<pid>.<starttime>`
  and then looks for other markers. A writer beside anyone, or a reader beside a writer,
  is an overlap -- unless the other marker's process is dead (a holder killed with -9
  never removes its marker: that marker is stale, removed and counted, not a violation)
  or dying (SIGKILL pending or already exiting: a killed holder whose lock the kernel
  freed a moment before the process was gone; it runs no more user code; counted and
  shown, not a violation).
  Mark-then-look on both sides means any two overlapping critical sections are seen by at
  least one of them.
- nothing changes under a lock: each `with` holder reads the JSON file on entry and on
  exit; an `update` that committed in between is a reader or writer beside a writer.
- counter: every acknowledged `update '.n += 1'` (exit 0) is in the file, and nothing else
  is: acks <= n <= acks + updates killed before they could acknowledge (a SIGKILL after
  the rename but before exit commits without an ack).
- the file is valid JSON at every one of the sampler's reads, and n never goes down.
- after a final `lockrun cleanup`, the lock directory holds nothing but reader gates
  (`<hex>.rw`), and no temp file of an update is left beside the target.
- no process of the run is left behind (each carries a tag in its environment).
- no operation fails other than by our SIGKILL, and none outlives its time bound.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

CS = r"""# Critical section probe, sourced by a holder: mode=W|R; . ./cs.sh
read -r st < /proc/$$/stat
set -- ${st##*) }
me="$mode.$$.${20}"
alive() {
  rest=${1#?.}; pid=${rest%%.*}; start=${rest#*.}
  read -r s < /proc/$pid/stat 2>/dev/null || return 1
  set -- ${s##*) }
  [ "$1" != Z ] && [ "$1" != X ] && [ "${20}" = "$start" ] || return 1
  # Dying rather than alive: exiting (PF_EXITING) or SIGKILL pending.
  dying=0
  [ $(( $7 & 4 )) -ne 0 ] && dying=1
  while read -r k v; do
    case $k in SigPnd:|ShdPnd:) [ $(( 0x$v & 0x100 )) -ne 0 ] && dying=1 ;; esac
  done < /proc/$pid/status
  return 0
}
mkdir "occ/$me" 2>/dev/null || echo "dup $me" >> viol.log
read -r before < data.json
for m in occ/*; do
  m=${m#occ/}
  [ "$m" = "$me" ] && continue
  case "$m" in
    W.*) ;;
    R.*) [ "$mode" = W ] || continue ;;
    *) continue ;;
  esac
  if alive "$m"; then
    if [ $dying = 1 ]; then
      echo "dying $me $m" >> dying.log
    else
      echo "overlap $me $m" >> viol.log
    fi
  else
    rmdir "occ/$m" 2>/dev/null && echo "$m" >> stale.log
  fi
done
read -r after < data.json
[ "$before" = "$after" ] || echo "changed $me: $before -> $after" >> viol.log
rmdir "occ/$me"
"""

OP_TIMEOUT = 90.0  # no single operation may take longer (they wait with -w 60)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.done = {}  # op -> count of acknowledged (exit 0) runs
        self.killed = {}  # op -> count killed by us
        self.failures = []  # unexpected exits
        self.kills = 0
        self.pgroup_kills = 0
        self.samples = 0
        self.bad_json = []
        self.went_down = []

    def bump(self, table, op):
        with self.lock:
            table[op] = table.get(op, 0) + 1


class Inflight:
    """Operations running now, so the killer can pick one."""

    def __init__(self):
        self.lock = threading.Lock()
        self.procs = {}  # pid -> (op, Popen)
        self.killed = set()  # pids we sent SIGKILL

    def add(self, op, p):
        with self.lock:
            self.procs[p.pid] = (op, p)

    def remove(self, p):
        with self.lock:
            self.procs.pop(p.pid, None)
            return p.pid in self.killed

    def kill_random(self, rng, stats):
        with self.lock:
            cands = [(pid, op, p) for pid, (op, p) in self.procs.items()
                     if pid not in self.killed and op != "cleanup"]
            if not cands:
                return
            pid, op, p = rng.choice(cands)
            if p.poll() is not None:
                return
            self.killed.add(pid)
            # Half the time lockrun's process group, half the time lockrun alone. Either
            # way a `with` command (in a group of its own) outlives lockrun until the next
            # taker ends it, which the critical sections' markers check.
            try:
                # An acquire's owner shell runs the section itself: always the group.
                if op == "acquire" or rng.random() < 0.5:
                    os.killpg(pid, signal.SIGKILL)
                    stats.pgroup_kills += 1
                else:
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            stats.kills += 1


def worker(idx, args, env, deadline, stats, inflight, seed):
    rng = random.Random(seed)
    L = args.bin
    while time.monotonic() < deadline:
        r = rng.random()
        if r < 0.15:
            op, argv = "with", [L, "with", "-q", "-w", "60", "data.json", "--",
                                "sh", "-c", "mode=W; . ./cs.sh"]
        elif r < 0.25:
            op, argv = "with-fork", [L, "with", "-q", "-w", "60", "data.json", "--",
                                     "sh", "-c", "sh -c 'mode=W; . ./cs.sh' & wait"]
        elif r < 0.38:
            op, argv = "with-shared", [L, "with", "-q", "-s", "-w", "60", "data.json", "--",
                                       "sh", "-c", "mode=R; . ./cs.sh"]
        elif r < 0.45:
            op, argv = "with-shared-fork", [L, "with", "-q", "-s", "-w", "60", "data.json",
                                            "--", "sh", "-c",
                                            "sh -c 'mode=R; . ./cs.sh' & wait"]
        elif r < 0.80:
            op, argv = "update", [L, "update", "-q", "-w", "60", "data.json", ".n += 1"]
        elif r < 0.95:
            # The owner of an acquired lock is the calling shell, which runs the critical
            # section itself (sourced), so killing it ends the section too.
            op, argv = "acquire", ["sh", "-c",
                                   f'id=$("{L}" acquire -q -w 60 data.json) || exit 3; '
                                   'mode=W; . ./cs.sh; '
                                   f'"{L}" release -q "$id" || exit 4']
        else:
            op, argv = "cleanup", [L, "cleanup", "-q", "--lock-dir", ".locks"]
        t0 = time.monotonic()
        p = subprocess.Popen(argv, cwd=args.work, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
        inflight.add(op, p)
        try:
            _, err = p.communicate(timeout=OP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            _, err = p.communicate()
            with stats.lock:
                stats.failures.append(f"{op} hung > {OP_TIMEOUT:.0f} s: {err.decode(errors='replace')[-300:]}")
        was_killed = inflight.remove(p)
        if p.returncode == 0:
            stats.bump(stats.done, op)
        elif was_killed and p.returncode == -signal.SIGKILL:
            stats.bump(stats.killed, op)
        elif was_killed:
            # Killed the session while `with` waited for its command: lockrun itself was
            # SIGKILLed too, so any other status is wrong... except a shell whose child
            # lockrun (acquire/release) died first and whose own kill came a moment later.
            with stats.lock:
                stats.failures.append(f"{op} killed but exited {p.returncode}: "
                                      f"{err.decode(errors='replace')[-300:]}")
        else:
            with stats.lock:
                stats.failures.append(f"{op} exited {p.returncode} after "
                                      f"{time.monotonic() - t0:.2f} s: "
                                      f"{err.decode(errors='replace')[-300:]}")


def killer(args, deadline, stats, inflight, seed, stop):
    rng = random.Random(seed)
    while time.monotonic() < deadline and not stop.is_set():
        time.sleep(rng.uniform(args.kill_every / 2000.0, args.kill_every * 1.5 / 1000.0))
        inflight.kill_random(rng, stats)


def sampler(work, stats, stop):
    path = os.path.join(work, "data.json")
    last = 0
    while not stop.is_set():
        try:
            with open(path, "rb") as f:
                text = f.read()
        except FileNotFoundError:
            text = b"<missing>"
        stats.samples += 1
        try:
            n = json.loads(text)["n"]
        except (ValueError, KeyError, TypeError):
            stats.bad_json.append(text[:200])
            continue
        if n < last:
            stats.went_down.append((last, n))
        last = n
        time.sleep(0.002)


def tagged_pids(tag):
    """Live processes (not zombies) whose environment carries the run's tag."""
    found = []
    needle = f"LOCKRUN_STRESS_TAG={tag}".encode()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{d}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state not in ("Z", "X"):
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{d} {cmd}")
        except OSError:
            continue
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--kill-every", type=float, default=100,
                    help="mean milliseconds between two SIGKILLs (default 100)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    tmp = tempfile.mkdtemp(prefix="lockrun-stress-")
    args.work = tmp
    with open(os.path.join(tmp, "cs.sh"), "w") as f:
        f.write(CS)
    with open(os.path.join(tmp, "data.json"), "w") as f:
        f.write('{"n": 0}\n')
    os.mkdir(os.path.join(tmp, "occ"))
    tag = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKRUN_")}
    env["LOCKRUN_STRESS_TAG"] = tag

    stats = Stats()
    inflight = Inflight()
    stop = threading.Event()
    deadline = time.monotonic() + args.seconds
    samp = threading.Thread(target=sampler, args=(tmp, stats, stop))
    samp.start()
    kill_t = threading.Thread(target=killer, args=(args, deadline, stats, inflight, seed, stop))
    kill_t.start()
    workers = [threading.Thread(target=worker,
                                args=(i, args, env, deadline, stats, inflight, seed + 1 + i))
               for i in range(args.procs)]
    t0 = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    kill_t.join()
    elapsed = time.monotonic() - t0

    def run(argv):
        return subprocess.run(argv, cwd=tmp, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60)

    violations = list(stats.failures)
    # One more acknowledged update: proceeds past whatever the last kill left behind and
    # removes a killed update's temp file.
    out = run([args.bin, "update", "-q", "-w", "10", "data.json", ".n += 1"])
    if out.returncode == 0:
        stats.bump(stats.done, "update")
    else:
        violations.append(f"final update exited {out.returncode}: {out.stderr.decode()[-300:]}")
    stop.set()
    samp.join()

    # The counter.
    try:
        with open(os.path.join(tmp, "data.json")) as f:
            n = json.load(f)["n"]
    except (ValueError, KeyError, OSError) as e:
        n = None
        violations.append(f"data.json unreadable at the end: {e}")
    acks = stats.done.get("update", 0)
    killed_upd = stats.killed.get("update", 0)
    if n is None or not (acks <= n <= acks + killed_upd):
        violations.append(f"counter {n} outside [acks {acks}, acks + killed {acks + killed_upd}]")
    if stats.bad_json:
        violations.append(f"{len(stats.bad_json)} invalid JSON reads, first: {stats.bad_json[0]!r}")
    if stats.went_down:
        violations.append(f"counter went down: {stats.went_down[:3]}")

    # Occupancy.
    viol_lines = []
    vp = os.path.join(tmp, "viol.log")
    if os.path.exists(vp):
        with open(vp) as f:
            viol_lines = [l.strip() for l in f if l.strip()]
    overlaps = [l for l in viol_lines if l.startswith("overlap")]
    changed = [l for l in viol_lines if l.startswith("changed")]
    other = [l for l in viol_lines if not l.startswith(("overlap", "changed"))]
    for l in viol_lines[:10]:
        violations.append(l)
    dying = 0
    dp = os.path.join(tmp, "dying.log")
    if os.path.exists(dp):
        with open(dp) as f:
            dying = sum(1 for _ in f)
    stale_markers = 0
    sp = os.path.join(tmp, "stale.log")
    if os.path.exists(sp):
        with open(sp) as f:
            stale_markers = sum(1 for _ in f)

    # Leftover processes: give SIGKILLed ones a moment to be gone.
    left = tagged_pids(tag)
    end = time.monotonic() + 5
    while left and time.monotonic() < end:
        time.sleep(0.05)
        left = tagged_pids(tag)
    if left:
        violations.append(f"{len(left)} processes left behind: {left[:5]}")

    # Garbage: leftovers go once unchanged for 2 s, so wait that out, then clean up.
    time.sleep(2.2)
    out = run([args.bin, "cleanup", "--lock-dir", ".locks"])
    if out.returncode != 0:
        violations.append(f"final cleanup exited {out.returncode}: {out.stderr.decode()[-300:]}")
    cleaned = [l for l in out.stdout.decode().splitlines() if l.strip()]
    locks = os.path.join(tmp, ".locks")
    garbage = [e for e in (os.listdir(locks) if os.path.isdir(locks) else [])
               if not e.endswith(".rw")]
    garbage += [e for e in os.listdir(tmp) if ".lockrun-tmp-" in e]
    if garbage:
        violations.append(f"garbage after cleanup: {garbage}")
    # Markers still in occ/ must all be of dead processes (killed holders).
    live_markers = []
    for m in os.listdir(os.path.join(tmp, "occ")):
        parts = m.split(".")
        try:
            with open(f"/proc/{parts[1]}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] not in ("Z", "X") and fields[19] == parts[2]:
                live_markers.append(m)
        except (OSError, IndexError):
            pass
    if live_markers:
        violations.append(f"markers of live processes at the end: {live_markers}")

    d = stats.done
    k = stats.killed
    summary = (
        f"stress: {args.procs} procs, {elapsed:.0f} s (seed {seed}): "
        f"{d.get('with', 0)} with, {d.get('with-fork', 0)} with forking, "
        f"{d.get('with-shared', 0)} with -s, {d.get('with-shared-fork', 0)} with -s forking, "
        f"{d.get('update', 0)} update, {d.get('acquire', 0)} acquire/release, "
        f"{d.get('cleanup', 0)} cleanup; {stats.kills} kill -9 "
        f"({stats.pgroup_kills} of the whole group; "
        + ", ".join(f"{v} {op}" for op, v in sorted(k.items()))
        + f"); {len(overlaps)} overlaps, {len(changed)} changed under a lock"
        + (f", {len(other)} other" if other else "")
        + f", {dying} killed holders' commands seen still dying"
        + f", {stale_markers} stale markers of killed holders; "
        f"counter {n} in [acks {acks}, {acks + killed_upd}], "
        f"json {'valid' if not stats.bad_json else 'INVALID'} ({stats.samples} reads), "
        f"{len(garbage)} garbage ({len(cleaned)} cleanup lines at the end), "
        f"{len(left)} leftover processes"
    )
    if violations:
        for v in violations:
            print(f"stress: VIOLATION: {v}", file=sys.stderr)
        print(summary + " - FAIL")
        print(f"stress: work directory kept: {tmp}", file=sys.stderr)
        sys.exit(1)
    print(summary + " - PASS")
    if args.keep:
        print(f"stress: work directory kept: {tmp}", file=sys.stderr)
    else:
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
