#!/usr/bin/env python3
"""lockrun's benchmark: every figure measured side by side in one run, medians and
ratios printed as a Markdown table. Run through scripts/bench.sh (which builds the
release binary). Timing lives here, never in the test suite."""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run_timed(argv, cwd, env=None):
    """Wall time of one run of argv, in ms, with as little harness overhead as we can."""
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env or os.environ)
    _, status, _ = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    return (t1 - t0) / 1e6, os.waitstatus_to_exitcode(status)


def median_ms(argv, n, cwd, expect=0):
    samples = []
    for _ in range(n):
        ms, code = run_timed(argv, cwd)
        if code != expect:
            sys.exit(f"bench: {' '.join(argv)} exited {code}, expected {expect}")
        samples.append(ms)
    return statistics.median(samples)


def interleaved_medians(cmds, n, cwd):
    """Runs the commands alternately so machine noise hits them alike."""
    samples = [[] for _ in cmds]
    for _ in range(n):
        for i, argv in enumerate(cmds):
            ms, code = run_timed(argv, cwd)
            if code != 0:
                sys.exit(f"bench: {' '.join(argv)} exited {code}")
            samples[i].append(ms)
    return [statistics.median(s) for s in samples]


STAMP = re.compile(r"@(\d+\.\d+)\] (published|released)")


def handoff_ms(lockrun, work, rounds):
    """Release-to-next-holder latency: the holder's 'released' trace stamp to the
    waiter's 'published' stamp (both taken inside lockrun, wall clock)."""
    target = os.path.join(work, "handoff")
    env = dict(os.environ, LOCKRUN_DEBUG="1")
    lats = []
    for _ in range(rounds):
        go = os.path.join(work, "go")
        ready = os.path.join(work, "ready")
        for p in (go, ready):
            if os.path.exists(p):
                os.unlink(p)
        holder = subprocess.Popen(
            [lockrun, "with", target, "--", "sh", "-c",
             f"touch {ready}; while [ ! -e {go} ]; do sleep 0.005; done"],
            stderr=subprocess.PIPE, env=env, text=True)
        while not os.path.exists(ready):
            time.sleep(0.001)
        waiter = subprocess.Popen([lockrun, "with", "-w", "inf", target, "--", "true"],
                                  stderr=subprocess.PIPE, env=env, text=True)
        time.sleep(0.05)  # let the waiter block on the holder's flock
        open(go, "w").close()
        _, herr = holder.communicate(timeout=30)
        _, werr = waiter.communicate(timeout=30)
        released = [float(m.group(1)) for m in STAMP.finditer(herr) if m.group(2) == "released"]
        published = [float(m.group(1)) for m in STAMP.finditer(werr) if m.group(2) == "published"]
        if not released or not published:
            sys.exit("bench: handoff trace lines missing:\n" + herr + werr)
        lats.append((published[-1] - released[-1]) * 1000.0)
    return statistics.median(lats)


def waiter_cpu_ms(lockrun, work, seconds):
    """CPU time (user+sys) a waiter burns while blocked for `seconds`."""
    target = os.path.join(work, "cpu")
    holder = subprocess.Popen([lockrun, "with", target, "--", "sleep", str(seconds + 1)])
    time.sleep(0.2)
    pid = os.posix_spawn(lockrun, [lockrun, "with", "-q", "-w", str(seconds), target, "--", "true"],
                         os.environ)
    _, status, usage = os.wait4(pid, 0)
    holder.wait()
    if os.waitstatus_to_exitcode(status) != 75:
        sys.exit("bench: the CPU waiter should have timed out (75)")
    return (usage.ru_utime + usage.ru_stime) * 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    lockrun = os.path.abspath(args.bin)
    flock = shutil.which("flock")
    true = shutil.which("true")
    if not flock:
        sys.exit("bench: flock(1) not found (util-linux)")
    n = 50 if args.quick else 400
    rows = []
    with tempfile.TemporaryDirectory() as work:
        target = os.path.join(work, "f")
        fl, lr = interleaved_medians(
            [[flock, target, true], [lockrun, "with", target, "--", true]], n, work)
        rows.append(("`with F -- true` vs `flock F true`", f"{lr:.3f} ms", f"{fl:.3f} ms",
                     f"{lr / fl:.2f}x", "<= 1.3x"))

        held = os.path.join(work, "held")
        holder = subprocess.Popen([lockrun, "with", held, "--", "sleep", "600"])
        time.sleep(0.2)
        busy = median_ms([lockrun, "with", "-n", "-q", held, "--", true], n, work, expect=75)
        fl_busy = median_ms([flock, "-n", held + ".flock-held", true], 1, work)  # warm-up
        fh = subprocess.Popen([flock, held + ".flock-held", "sleep", "600"])
        time.sleep(0.2)
        fl_busy = median_ms([flock, "-n", held + ".flock-held", true], n, work, expect=1)
        holder.terminate()
        fh.terminate()
        holder.wait()
        fh.wait()
        rows.append(("`with -n` on a held lock", f"{busy:.3f} ms", f"{fl_busy:.3f} ms",
                     f"{busy / fl_busy:.2f}x", "< 5 ms"))

        hand = handoff_ms(lockrun, work, 10 if args.quick else 60)
        rows.append(("release -> next holder (handoff)", f"{hand:.3f} ms", "", "", "< 1 ms"))

        cpu = waiter_cpu_ms(lockrun, work, 1 if args.quick else 3)
        rows.append((f"CPU burnt by a waiter in {1 if args.quick else 3} s", f"{cpu:.1f} ms", "", "", "~0"))

    print(f"Machine: {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}; "
          f"{n} runs per median{' (quick)' if args.quick else ''}\n")
    print("| measure | lockrun | flock(1) | ratio | goal |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
