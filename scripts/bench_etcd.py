"""The etcd backend's bench section (README "Several machines"), run by scripts/bench.py:
lockrun's etcd backend side by side with `etcdctl lock`, against a one-member etcd this
script starts on 127.0.0.1 (free ports, a temp data dir) and stops afterwards.

Skipped, with its reason, when etcd or etcdctl is not installed."""

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    """One etcd member on loopback, in its own temp dir; stop() kills it."""

    def __init__(self, work):
        self.client, peer = free_port(), free_port()
        self.endpoint = f"127.0.0.1:{self.client}"
        data = os.path.join(work, "etcd.data")
        self.log = open(os.path.join(work, "etcd.log"), "w")
        self.proc = subprocess.Popen(
            ["etcd", "--name=bench", f"--data-dir={data}",
             f"--listen-client-urls=http://{self.endpoint}",
             f"--advertise-client-urls=http://{self.endpoint}",
             f"--listen-peer-urls=http://127.0.0.1:{peer}",
             f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
             f"--initial-cluster=bench=http://127.0.0.1:{peer}"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{self.endpoint}/health", timeout=1) as r:
                    if b'"true"' in r.read():
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        sys.exit("bench: etcd did not start (see its log in the bench's temp dir)")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


class EtcdBench:
    def __init__(self, lockrun, work, quick, row):
        self.L = lockrun
        self.work = work
        self.quick = quick
        self.row = row
        self.sh = shutil.which("sh")
        self.true = shutil.which("true")
        self.sleep = shutil.which("sleep")
        self.etcdctl = shutil.which("etcdctl")
        self.etcd = Etcd(work)
        self.url = f"etcd://{self.etcd.endpoint}"
        self.env = dict(os.environ, ETCDCTL_API="3")
        for k in ("LOCKRUN_BACKEND", "LOCKRUN_DIR", "LOCKRUN_TIMEOUT", "LOCKRUN_DEBUG"):
            self.env.pop(k, None)

    def p(self, name):
        return os.path.join(self.work, name)

    def wrap(self, tool, name, cmd, wait="inf"):
        if tool == "lockrun":
            return [self.L, "with", "-q", "-w", wait, "--backend", self.url, "--name", name,
                    "--"] + cmd
        return [self.etcdctl, f"--endpoints={self.etcd.endpoint}", "lock", name, "--"] + cmd

    def timed(self, argv):
        t0 = time.perf_counter()
        code = subprocess.call(argv, env=self.env, stdin=subprocess.DEVNULL)
        ms = (time.perf_counter() - t0) * 1000.0
        if code != 0:
            sys.exit(f"bench: {' '.join(argv)} exited {code}")
        return ms

    def uncontended(self):
        n = 10 if self.quick else 100
        res = {}
        for tool in ("lockrun", "etcdctl"):
            argv = self.wrap(tool, f"u-{tool}", [self.true])
            res[tool] = statistics.median(self.timed(argv) for _ in range(n))
        self.row("uncontended acquire + `true` + release (median of %d)" % n, "",
                 f"{res['lockrun']:.2f} ms", f"{res['etcdctl']:.2f} ms",
                 f"{res['etcdctl'] / res['lockrun']:.1f}x faster", None)

    def handoff_release(self):
        """The holder's command ends (its last act writes a clock stamp) -> the waiter's
        command starts (its first act writes one)."""
        rounds = 5 if self.quick else 30
        res = {}
        for tool in ("lockrun", "etcdctl"):
            lats = []
            for r in range(rounds):
                go, ready, t1, t2 = (self.p(f"{x}-{tool}-{r}") for x in ("go", "ready", "t1", "t2"))
                hcmd = [self.sh, "-c", f"touch {ready}; while [ ! -e {go} ]; do sleep 0.005; done; "
                                       f"date +%s.%N > {t1}"]
                wcmd = [self.sh, "-c", f"date +%s.%N > {t2}"]
                holder = subprocess.Popen(self.wrap(tool, f"h-{tool}", hcmd), env=self.env)
                deadline = time.monotonic() + 20
                while not os.path.exists(ready):
                    if time.monotonic() > deadline:
                        sys.exit(f"bench: {tool} holder did not start")
                    time.sleep(0.001)
                waiter = subprocess.Popen(self.wrap(tool, f"h-{tool}", wcmd), env=self.env)
                time.sleep(0.3)  # the waiter is queued and watching
                open(go, "w").close()
                holder.wait(timeout=30)
                waiter.wait(timeout=30)
                lats.append((float(open(t2).read()) - float(open(t1).read())) * 1000.0)
            res[tool] = statistics.median(lats)
        self.row("handoff on release: holder's command ends -> waiter's starts (median)",
                 "< 50 ms", f"{res['lockrun']:.2f} ms", f"{res['etcdctl']:.2f} ms", "",
                 res["lockrun"] < 50.0)

    def handoff_kill9(self):
        """kill -9 of the holder's lock process -> the waiter's command starts."""
        rounds = {"lockrun": 2 if self.quick else 10, "etcdctl": 1 if self.quick else 3}
        res = {}
        for tool in ("lockrun", "etcdctl"):
            lats = []
            for r in range(rounds[tool]):
                t2 = self.p(f"k9-{tool}-{r}")
                holder = subprocess.Popen(self.wrap(tool, f"k-{tool}", [self.sleep, "120"]),
                                          env=self.env, start_new_session=True)
                time.sleep(0.5)
                waiter = subprocess.Popen(
                    self.wrap(tool, f"k-{tool}", [self.sh, "-c", f"date +%s.%N > {t2}"], "30"),
                    env=self.env)
                time.sleep(0.3)
                t0 = time.time()
                os.kill(holder.pid, signal.SIGKILL)
                holder.wait()
                try:
                    waiter.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    waiter.kill()
                    waiter.wait()
                lats.append((float(open(t2).read()) - t0) * 1000.0 if os.path.exists(t2)
                            else float("inf"))
                try:  # etcdctl's orphaned command, if it lives on
                    os.killpg(holder.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            res[tool] = statistics.median(lats)
        self.row("handoff after kill -9 of the holder (median)",
                 "< 3 s, and faster than etcdctl", f"{res['lockrun']:.0f} ms",
                 f"{res['etcdctl']:.0f} ms", f"{res['etcdctl'] / res['lockrun']:.1f}x faster",
                 res["lockrun"] < 3000 and res["lockrun"] < res["etcdctl"])


def run(lockrun, quick):
    """Measures and prints the etcd table (or one SKIPPED line)."""
    for tool in ("etcd", "etcdctl"):
        if not shutil.which(tool):
            print(f"SKIPPED: etcd backend bench: `{tool}` is not installed "
                  "(apt-get install etcd-server etcd-client)\n")
            return
    rows = []

    def row(m, goal, lr, ec, ratio, met):
        rows.append((m, goal, lr, ec, ratio, met))

    with tempfile.TemporaryDirectory(prefix="lockrun-bench-etcd-") as work:
        b = EtcdBench(lockrun, work, quick, row)
        try:
            print("bench: etcd backend", file=sys.stderr)
            b.uncontended()
            b.handoff_release()
            b.handoff_kill9()
        finally:
            b.etcd.stop()
    print("etcd backend (one etcd 3 member on 127.0.0.1; lockrun's default lease TTL 2 s, "
          "etcdctl's session TTL 10 s):\n")
    print("| measure | goal | lockrun --backend etcd:// | etcdctl lock | ratio | met |")
    print("|---|---|---|---|---|---|")
    for m, goal, lr, ec, ratio, met in rows:
        mark = "" if met is None else ("yes" if met else "**no**")
        print(f"| {m} | {goal} | {lr} | {ec} | {ratio} | {mark} |")
    print()
