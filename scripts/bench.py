#!/usr/bin/env python3
"""lockrun's benchmark: every bar of lockrun-protocol(5), MEASURED, in one run, lockrun
side by side with flock(1) (plus jq and mv for JSON) and a bash mkdir lock (scripts/mkdir-lock.sh,
the kind of script lockrun replaces); medians and ratios printed as one Markdown table.
Run through scripts/bench.sh (which builds the release binary). Timing lives here,
never in the test suite."""

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_etcd  # noqa: E402  (scripts/bench_etcd.py: the etcd backend's section)


def run_timed(argv, env=None, quiet=False):
    """Wall time of one run of argv in ms (posix_spawn + wait4: little harness overhead),
    its exit code and its rusage. quiet: stderr to /dev/null."""
    actions = [(os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)] if quiet else []
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env or os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    return (t1 - t0) / 1e6, os.waitstatus_to_exitcode(status), usage


def check(argv, code, expect):
    if code != expect:
        sys.exit(f"bench: {' '.join(argv)} exited {code}, expected {expect}")


def interleaved_medians(cmds, n, expect=0):
    """Runs the commands alternately so machine noise hits them alike."""
    samples = [[] for _ in cmds]
    for _ in range(n):
        for i, argv in enumerate(cmds):
            ms, code, _ = run_timed(argv)
            check(argv, code, expect)
            samples[i].append(ms)
    return [statistics.median(s) for s in samples]


class Bench:
    def __init__(self, lockrun, work, quick):
        self.L = lockrun
        self.work = work
        self.quick = quick
        self.flock = shutil.which("flock")
        self.jq = shutil.which("jq")
        self.sh = shutil.which("sh")
        self.true = shutil.which("true")
        self.sleep = shutil.which("sleep")
        self.mkdir_lock = os.path.join(HERE, "mkdir-lock.sh")
        self.rows = []

    def p(self, name):
        return os.path.join(self.work, name)

    def row(self, measure, goal, lockrun, flock, mkdir, ratio, met):
        self.rows.append((measure, goal, lockrun, flock, mkdir, ratio, met))
        print(f"bench: {measure}: lockrun {lockrun}, flock {flock}, mkdir {mkdir}", file=sys.stderr)

    # -- MEASURED: overhead ---------------------------------------------------------------

    def overhead(self):
        n = 40 if self.quick else 400
        f = self.p("f")
        fl, lr, mk = interleaved_medians([
            [self.flock, f, self.true],
            [self.L, "with", f, "--", self.true],
            [self.mkdir_lock, self.p("f.mkdir"), self.true],
        ], n)
        self.row("`with F -- true` (median)", "<= 1.3x flock", f"{lr:.2f} ms", f"{fl:.2f} ms",
                 f"{mk:.2f} ms", f"{lr / fl:.2f}x flock", lr / fl <= 1.3)

    # -- MEASURED: update vs flock + jq + mv ---------------------------------------------

    def jq_mv(self, doc):
        return [self.sh, "-c", f'{self.jq} ".n += 1" {doc} > {doc}.tmp && mv {doc}.tmp {doc}']

    def update_uncontended(self):
        n = 20 if self.quick else 200
        for name in ("u1.json", "u2.json", "u3.json"):
            with open(self.p(name), "w") as f:
                f.write('{"n": 0}\n')
        lr, fl, mk = interleaved_medians([
            [self.L, "update", self.p("u1.json"), ".n += 1"],
            [self.flock, self.p("u2.json.lock")] + self.jq_mv(self.p("u2.json")),
            [self.mkdir_lock, self.p("u3.lockdir")] + self.jq_mv(self.p("u3.json")),
        ], n)
        for name in ("u1.json", "u2.json", "u3.json"):
            got = json.load(open(self.p(name)))["n"]
            if got != n:
                sys.exit(f"bench: {name} has n={got}, expected {n}")
        self.row("`update F '.n += 1'` (median)", ">= 10x faster than flock+jq+mv",
                 f"{lr:.2f} ms", f"{fl:.2f} ms (+jq+mv)", f"{mk:.2f} ms (+jq+mv)",
                 f"{fl / lr:.1f}x faster", fl / lr >= 10)

    def update_contended(self):
        per = 50 if self.quick else 250
        procs = 4

        def one(tool):
            doc = self.p(f"c-{tool}.json")
            with open(doc, "w") as f:
                f.write('{"n": 0}\n')
            if tool == "lockrun":
                argv = [self.L, "update", "-w", "60", doc, ".n += 1"]
            elif tool == "flock":
                argv = [self.flock, doc + ".lock"] + self.jq_mv(doc)
            else:
                argv = [self.mkdir_lock, doc + ".lockdir"] + self.jq_mv(doc)
            lats = []
            errors = []

            def worker():
                for _ in range(per):
                    ms, code, _ = run_timed(argv, quiet=tool != "lockrun")
                    if code != 0:
                        errors.append(code)
                    lats.append(ms)

            t0 = time.perf_counter()
            ts = [threading.Thread(target=worker) for _ in range(procs)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            wall = (time.perf_counter() - t0) * 1000.0
            if errors and tool == "lockrun":
                sys.exit(f"bench: contended {tool}: exits {errors[:5]}")
            try:
                n = json.load(open(doc))["n"]
            except (ValueError, KeyError, OSError):
                return statistics.median(lats), wall / (procs * per), None
            # A baseline's failed runs (its stale-lock race lets two writers in, and one's
            # mv then finds no temp file) count as lost updates too.
            return statistics.median(lats), wall / (procs * per), procs * per - n

        res = {t: one(t) for t in ("lockrun", "flock", "mkdir")}
        lat, wall, lost = res["lockrun"]

        def cell(t, suffix=""):
            la, wa, lo = res[t]
            lost = "the file was left invalid JSON" if lo is None else f"{lo} lost"
            return f"{wa:.2f} ms/update, {lost}{suffix}"

        self.row(f"{procs} procs x {per} updates: wall time per update, lost updates",
                 "0 lost, < 2 ms per update", cell("lockrun"), cell("flock", " (+jq+mv)"),
                 cell("mkdir", " (+jq+mv)"), f"{res['flock'][1] / wall:.1f}x faster",
                 lost == 0 and wall < 2.0)
        self.row(f"{procs} procs x {per} updates: median latency of one update (incl. waiting)",
                 "(same bar, stricter reading)", f"{lat:.2f} ms", f"{res['flock'][0]:.2f} ms",
                 f"{res['mkdir'][0]:.2f} ms", f"{res['flock'][0] / lat:.1f}x faster",
                 lat < 2.0)

    # -- MEASURED: busy lock, handoff, waiter CPU -----------------------------------------

    def holder(self, tool, target, seconds):
        cmd = [self.sleep, str(seconds)]
        argv = {
            "lockrun": [self.L, "with", target, "--"] + cmd,
            "flock": [self.flock, target] + cmd,
            "mkdir": [self.mkdir_lock, target + ".lockdir"] + cmd,
        }[tool]
        p = subprocess.Popen(argv, start_new_session=True)
        time.sleep(0.3)
        return p

    def stop(self, p):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()

    def busy(self):
        n = 40 if self.quick else 400
        held = self.p("held")
        hs = [self.holder(t, held, 600) for t in ("lockrun", "flock", "mkdir")]
        lr = statistics.median(run_timed(a, quiet=True)[0] for a in
                               [[self.L, "with", "-n", "-q", held, "--", self.true]] * n)
        fl = statistics.median(run_timed(a)[0] for a in [[self.flock, "-n", held, self.true]] * n)
        mk = statistics.median(run_timed(a)[0] for a in
                               [[self.mkdir_lock, "-n", held + ".lockdir", self.true]] * n)
        for a, code in (([self.L, "with", "-n", "-q", held, "--", self.true], 75),
                        ([self.flock, "-n", held, self.true], 1),
                        ([self.mkdir_lock, "-n", held + ".lockdir", self.true], 75)):
            check(a, run_timed(a, quiet=True)[1], code)
        for h in hs:
            self.stop(h)
        self.row("`with -n` on a held lock (median)", "< 5 ms", f"{lr:.2f} ms", f"{fl:.2f} ms",
                 f"{mk:.2f} ms", f"{lr / fl:.2f}x flock", lr < 5.0)

    STAMP = re.compile(r"@(\d+\.\d+)\] (published|released)")

    def handoff_trace(self, rounds):
        """lockrun's own release -> next holder latency: the holder's 'released' trace
        stamp to the waiter's 'published' stamp (both wall clock, inside lockrun)."""
        target = self.p("handoff")
        env = dict(os.environ, LOCKRUN_DEBUG="1")
        go, ready = self.p("go"), self.p("ready")
        lats = []
        for _ in range(rounds):
            for x in (go, ready):
                if os.path.exists(x):
                    os.unlink(x)
            holder = subprocess.Popen(
                [self.L, "with", target, "--", "sh", "-c",
                 f"touch {ready}; while [ ! -e {go} ]; do sleep 0.005; done"],
                stderr=subprocess.PIPE, env=env, text=True)
            while not os.path.exists(ready):
                time.sleep(0.001)
            waiter = subprocess.Popen([self.L, "with", "-w", "inf", target, "--", "true"],
                                      stderr=subprocess.PIPE, env=env, text=True)
            time.sleep(0.05)
            open(go, "w").close()
            _, herr = holder.communicate(timeout=30)
            _, werr = waiter.communicate(timeout=30)
            rel = [float(m.group(1)) for m in self.STAMP.finditer(herr) if m.group(2) == "released"]
            pub = [float(m.group(1)) for m in self.STAMP.finditer(werr) if m.group(2) == "published"]
            if not rel or not pub:
                sys.exit("bench: handoff trace lines missing:\n" + herr + werr)
            lats.append((pub[-1] - rel[-1]) * 1000.0)
        return statistics.median(lats)

    def handoff_cmd(self, tool, rounds):
        """Tool-neutral handoff: the holder's command ends (its last act writes a clock
        stamp) -> the waiter's command starts (its first act writes one)."""
        target = self.p(f"h-{tool}")
        lats = []
        for r in range(rounds):
            go, ready, t1, t2 = (self.p(f"{x}-{tool}") for x in ("go", "ready", "t1", "t2"))
            for x in (go, ready, t1, t2):
                if os.path.exists(x):
                    os.unlink(x)
            hcmd = [self.sh, "-c", f"touch {ready}; while [ ! -e {go} ]; do sleep 0.005; done; "
                                   f"date +%s.%N > {t1}"]
            wcmd = [self.sh, "-c", f"date +%s.%N > {t2}"]
            wrap = {
                "lockrun": lambda c: [self.L, "with", "-w", "inf", target, "--"] + c,
                "flock": lambda c: [self.flock, target] + c,
                "mkdir": lambda c: [self.mkdir_lock, target + ".lockdir"] + c,
            }[tool]
            holder = subprocess.Popen(wrap(hcmd))
            while not os.path.exists(ready):
                time.sleep(0.001)
            waiter = subprocess.Popen(wrap(wcmd))
            time.sleep(0.05 + random.random() * 0.1)
            open(go, "w").close()
            holder.wait(timeout=30)
            waiter.wait(timeout=30)
            lats.append((float(open(t2).read()) - float(open(t1).read())) * 1000.0)
        return statistics.median(lats)

    def handoff(self):
        rounds = 8 if self.quick else 40
        tr = self.handoff_trace(rounds)
        self.row("release -> next holder, inside lockrun (trace stamps, median)", "< 1 ms",
                 f"{tr:.3f} ms", "", "", "", tr < 1.0)
        lr, fl, mk = (self.handoff_cmd(t, rounds) for t in ("lockrun", "flock", "mkdir"))
        self.row("holder's command ends -> waiter's command starts (median)", "",
                 f"{lr:.2f} ms", f"{fl:.2f} ms", f"{mk:.2f} ms", f"{lr / fl:.2f}x flock", None)

    def waiter_cpu(self):
        secs = 1 if self.quick else 3
        res = {}
        for tool in ("lockrun", "flock", "mkdir"):
            target = self.p(f"cpu-{tool}")
            h = self.holder(tool, target, secs)
            argv = {
                "lockrun": [self.L, "with", "-q", "-w", "inf", target, "--", self.true],
                "flock": [self.flock, target, self.true],
                "mkdir": [self.mkdir_lock, target + ".lockdir", self.true],
            }[tool]
            _, code, usage = run_timed(argv)
            check(argv, code, 0)
            h.wait()
            res[tool] = (usage.ru_utime + usage.ru_stime) * 1000.0
        self.row(f"CPU burnt by a waiter blocked ~{secs - 0.3:.1f} s", "~0",
                 f"{res['lockrun']:.1f} ms", f"{res['flock']:.1f} ms",
                 f"{res['mkdir']:.1f} ms", "", res["lockrun"] < 20)

    # -- MEASURED: reliability bars, in numbers -------------------------------------------

    def cycles(self):
        procs, per = (8, 60) if self.quick else (8, 500)
        cycle = 'mkdir occ 2>/dev/null || echo x >> overlaps; rmdir occ 2>/dev/null; true'
        res = {}
        for tool in ("lockrun", "flock", "mkdir"):
            d = self.p(f"cyc-{tool}")
            os.mkdir(d)
            wrap = {
                "lockrun": f'"{self.L}" with -w 120 t --',
                "flock": f'"{self.flock}" t',
                "mkdir": f'"{self.mkdir_lock}" t.lockdir',
            }[tool]
            # The mkdir lock polls every 100 ms: a smaller run keeps the bench short.
            n = min(per, 40) if tool == "mkdir" else per
            script = f"i=0; while [ $i -lt {n} ]; do {wrap} sh -c '{cycle}' || exit 1; i=$((i+1)); done"
            t0 = time.perf_counter()
            ps = [subprocess.Popen(["sh", "-c", script], cwd=d, stderr=subprocess.DEVNULL)
                  for _ in range(procs)]
            for p in ps:
                if p.wait(timeout=900) != 0:
                    sys.exit(f"bench: {tool} cycle worker failed")
            wall = time.perf_counter() - t0
            ov = os.path.getsize(os.path.join(d, "overlaps")) // 2 if os.path.exists(
                os.path.join(d, "overlaps")) else 0
            res[tool] = (ov, wall, n)
        self.row(f"{procs} procs x {per} lock cycles: overlaps (wall time)", "0 overlaps",
                 *(f"{res[t][0]} ({res[t][1]:.1f} s" + ("" if res[t][2] == per else f", {procs} x {res[t][2]} only")
                   + ")" for t in ("lockrun", "flock", "mkdir")),
                 f"{res['flock'][1] / res['lockrun'][1]:.2f}x flock's speed", res["lockrun"][0] == 0)

    def kill9(self):
        """kill -9 of the holder (the tool's own process): how soon does the next taker
        get in? lockrun's command dies with it; flock(1)'s command keeps the lock."""
        rounds = 3 if self.quick else 10
        cap = 3.0
        res = {}
        for tool in ("lockrun", "flock", "mkdir"):
            target = self.p(f"k9-{tool}")
            lats = []
            for _ in range(rounds if tool != "flock" else 2):
                h = self.holder(tool, target, 60)
                os.kill(h.pid, signal.SIGKILL)
                h.wait()
                argv = {
                    "lockrun": [self.L, "with", "-q", "-w", str(cap), target, "--", self.true],
                    "flock": [self.flock, "-w", str(cap), target, self.true],
                    "mkdir": [self.mkdir_lock, target + ".lockdir", self.true],
                }[tool]
                ms, code, _ = run_timed(argv)
                lats.append(ms if code == 0 else float("inf"))
                self.stop(h)  # the orphaned `sleep`, if it lives on
            res[tool] = statistics.median(lats)

        def fmt(v):
            return f"> {cap:.0f} s (the orphaned command holds it)" if v == float("inf") else f"{v:.2f} ms"

        self.row("kill -9 of the holder -> next taker in (median)", "< 100 ms",
                 fmt(res["lockrun"]), fmt(res["flock"]),
                 fmt(res["mkdir"]) + " (while the old command still runs)", "",
                 res["lockrun"] < 100)

    def update_kill_trials(self):
        """kill -9 of `update` at random moments: old or new document, never anything else."""
        trials = 40 if self.quick else 200
        doc = self.p("k.json")
        pad = "x" * 100_000

        def text(n):
            return f'{{"n": {n}, "pad": "{pad}"}}\n'

        with open(doc, "w") as f:
            f.write(text(0))
        n, bad, committed = 0, 0, 0
        for _ in range(trials):
            pid = os.posix_spawn(self.L, [self.L, "update", "-w", "10", doc, ".n += 1"], os.environ)
            time.sleep(random.random() * 0.006)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            now = open(doc).read()
            if now == text(n + 1):
                n, committed = n + 1, committed + 1
            elif now != text(n):
                bad += 1
        ms, code, _ = run_timed([self.L, "with", "-n", doc, "--", self.true])
        self.row(f"{trials} kill -9 of `update` at random moments: neither old nor new document",
                 "0", f"{bad} ({committed} committed; next `-n` taker: exit {code}, {ms:.1f} ms)",
                 "", "", "", bad == 0 and code == 0)

    def breakers(self):
        rounds = 3 if self.quick else 10
        target = self.p("brk")
        wins = []
        for _ in range(rounds):
            h = self.holder("lockrun", target, 60)
            os.kill(h.pid, signal.SIGKILL)
            h.wait()
            env = dict(os.environ, LOCKRUN_DEBUG="1")
            ps = [subprocess.Popen([self.L, "with", "-w", "20", target, "--", self.true],
                                   stderr=subprocess.PIPE, env=env, text=True) for _ in range(10)]
            w = 0
            for p in ps:
                _, err = p.communicate(timeout=60)
                if p.returncode != 0:
                    sys.exit(f"bench: a breaker exited {p.returncode}: {err}")
                w += err.count("broke dead lock")
            wins.append(w)
            self.stop(h)
        self.row(f"10 concurrent breakers of one dead lock, {rounds} rounds: winners per round",
                 "exactly 1", " ".join(map(str, wins)), "(kernel lock)", "", "",
                 all(w == 1 for w in wins))

    def big_document(self):
        mb = 5 if self.quick else 50
        doc = self.p("big.json")
        items, size, i = [], 0, 0
        while size < mb * 1_000_000:
            item = {"id": i, "name": f"session-{i}", "score": i * 1.5, "tags": ["a", "b"], "ok": i % 2 == 0}
            items.append(item)
            size += len(json.dumps(item)) + 6
            i += 1
        with open(doc, "w") as f:
            json.dump({"n": 0, "items": items}, f, indent=2)
        shutil.copy(doc, self.p("big2.json"))
        lr, code, u1 = run_timed([self.L, "update", doc, ".n += 1"])
        check(["lockrun update big"], code, 0)
        fl, code, u2 = run_timed([self.flock, self.p("big2.json.lock")] + self.jq_mv(self.p("big2.json")))
        check(["flock jq big"], code, 0)
        # ru_maxrss is in KiB on Linux.
        self.row(f"one update of a {mb} MB document: wall, peak RSS", "",
                 f"{lr / 1000:.2f} s, {u1.ru_maxrss / 1024:.0f} MiB",
                 f"{fl / 1000:.2f} s, {u2.ru_maxrss / 1024:.0f} MiB (+jq+mv)", "",
                 f"{fl / lr:.1f}x faster", None)
        self.one_long_token(mb, lr)

    def one_long_token(self, mb, baseline_ms):
        """A document of the same size made of one long number, string or key: every
        input-size path must be linear (issue 12: a 1 MB number once took 1.3 s, 10 MB
        over 20 s, with the lock held). Goal: within 2x of the many-small-values document."""
        n = mb * 1_000_000
        shapes = {
            "number": lambda f: f.write('{"n": 0, "x": 1' + "2" * n + "}"),
            "string": lambda f: f.write('{"n": 0, "x": "' + "y" * n + '"}'),
            "key": lambda f: f.write('{"n": 0, "' + "k" * n + '": 1}'),
        }
        for name, write in shapes.items():
            doc = self.p(f"long-{name}.json")
            with open(doc, "w") as f:
                write(f)
            ms, code, usage = run_timed([self.L, "update", doc, ".n += 1"])
            check([f"lockrun update long {name}"], code, 0)
            self.row(f"one update of a {mb} MB document of one long {name}: wall, peak RSS",
                     "linear: within 2x of the row above",
                     f"{ms / 1000:.2f} s, {usage.ru_maxrss / 1024:.0f} MiB", "", "",
                     f"{ms / baseline_ms:.2f}x the {mb} MB document", ms <= 2 * baseline_ms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--etcd-only", action="store_true",
                    help="only the etcd backend's section (lockrun against etcdctl lock)")
    args = ap.parse_args()
    lockrun = os.path.abspath(args.bin)
    if args.etcd_only:
        bench_etcd.run(lockrun, args.quick)
        return
    for tool in ("flock", "jq"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} not found")
    load = os.getloadavg()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lockrun-bench-") as work:
        b = Bench(lockrun, work, args.quick)
        b.overhead()
        b.update_uncontended()
        b.update_contended()
        b.busy()
        b.handoff()
        b.waiter_cpu()
        b.kill9()
        b.cycles()
        b.update_kill_trials()
        b.breakers()
        b.big_document()
    load_end = os.getloadavg()
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"Machine: {os.cpu_count()} cores ({cpu}), {os.uname().sysname} {os.uname().release}; "
          f"load average {load[0]:.2f} at the start, {load_end[0]:.2f} at the end; "
          f"{'quick run' if args.quick else 'full run'} in {time.monotonic() - t0:.0f} s. "
          "flock column: flock(1) (with jq and mv for JSON rows); mkdir column: "
          "scripts/mkdir-lock.sh, a bash mkdir lock polling every 100 ms.\n")
    print("| measure | goal (lockrun-protocol(5)) | lockrun | flock(1) | bash mkdir lock | ratio | met |")
    print("|---|---|---|---|---|---|---|")
    for m, goal, lr, fl, mk, ratio, met in b.rows:
        mark = "" if met is None else ("yes" if met else "**no**")
        print(f"| {m} | {goal} | {lr} | {fl} | {mk} | {ratio} | {mark} |")
    print()
    bench_etcd.run(lockrun, args.quick)


if __name__ == "__main__":
    main()
