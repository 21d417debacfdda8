"""The etcd backend's bench section (README "Several machines"), run by scripts/bench.py:
lockrun's etcd backend side by side with `etcdctl lock`, against a one-member etcd this
script starts on 127.0.0.1 (free ports, a temp data dir) and stops afterwards.

Skipped, with its reason, when etcd or etcdctl is not installed."""

import json
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


class Cluster:
    """Three etcd members on loopback (free ports, temp data dirs); stop() kills them."""

    def __init__(self, work, tag):
        ports = [(free_port(), free_port()) for _ in range(3)]
        self.endpoints = [f"127.0.0.1:{c}" for c, _ in ports]
        initial = ",".join(f"m{i}=http://127.0.0.1:{p}" for i, (_, p) in enumerate(ports))
        self.procs, self.logs = [], []
        for i, (client, peer) in enumerate(ports):
            log = open(os.path.join(work, f"cluster-{tag}-m{i}.log"), "w")
            self.logs.append(log)
            self.procs.append(subprocess.Popen(
                ["etcd", f"--name=m{i}", f"--data-dir={os.path.join(work, f'c{tag}-m{i}.data')}",
                 f"--listen-client-urls=http://127.0.0.1:{client}",
                 f"--advertise-client-urls=http://127.0.0.1:{client}",
                 f"--listen-peer-urls=http://127.0.0.1:{peer}",
                 f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                 f"--initial-cluster={initial}", "--initial-cluster-state=new",
                 f"--initial-cluster-token=bench-{tag}-{ports[0][0]}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log))
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.leader() is not None:
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the 3-member etcd cluster elected no leader")

    @staticmethod
    def start(work, tag):
        """A port taken between free_port() and etcd's bind fails the start: try again."""
        for attempt in range(3):
            try:
                return Cluster(work, f"{tag}-{attempt}")
            except RuntimeError as e:
                last = e
        sys.exit(f"bench: {last} (see the members' logs in the bench's temp dir)")

    def status(self, i):
        req = urllib.request.Request(f"http://{self.endpoints[i]}/v3/maintenance/status",
                                     data=b"{}", method="POST")
        with self.opener.open(req, timeout=1) as r:
            return json.loads(r.read())

    def leader(self):
        """The index of the member every member names as leader, or None."""
        try:
            st = [self.status(i) for i in range(3)]
        except OSError:
            return None
        ids = [s["header"]["member_id"] for s in st]
        leaders = {s.get("leader") for s in st}
        if len(leaders) != 1 or leaders & {None, "0"}:
            return None
        lead = leaders.pop()
        return ids.index(lead) if lead in ids else None

    def url(self, first):
        order = [first] + [i for i in range(3) if i != first]
        return "etcd://" + ",".join(self.endpoints[i] for i in order)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for log in self.logs:
            log.close()


def leader_kills(lockrun, work, rounds, env, progress=None):
    """Holds a lock at the default TTL for a 5 s command on a fresh 3-member cluster and
    SIGKILLs the leader 0.3 to 1.0 s into the hold (anywhere in the keepalive cycle):
    how many of `rounds` holders keep their lock (exit 0, command finished), and in how
    many rounds a majority of members saying "no leader" extended the holder's deadline."""
    kept = extended = 0
    for r in range(rounds):
        c = Cluster.start(work, r)
        try:
            lead = c.leader()
            done, ready = (os.path.join(work, f"lk-{x}-{r}") for x in ("done", "ready"))
            trace = open(os.path.join(work, f"lk-trace-{r}"), "w+")
            holder = subprocess.Popen(
                [lockrun, "with", "-q", "--backend", c.url(lead), "--name", "lk", "--",
                 "sh", "-c", f"touch {ready}; sleep 5; touch {done}"],
                env=dict(env, LOCKRUN_DEBUG="1"), stdin=subprocess.DEVNULL, stderr=trace)
            deadline = time.monotonic() + 20
            while not os.path.exists(ready):
                if time.monotonic() > deadline:
                    sys.exit("bench: the leader-kill holder did not start")
                time.sleep(0.005)
            time.sleep(0.3 + 0.7 * r / max(rounds - 1, 1))
            c.procs[lead].kill()
            code = holder.wait(timeout=60)
            ok = code == 0 and os.path.exists(done)
            kept += ok
            trace.seek(0)
            text = trace.read()
            ext = "deadline extended" in text
            extended += ext
            trace.close()
            if progress:
                progress(r, code, ext, text)
        finally:
            c.stop()
    return kept, extended


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

    def leader_kill(self):
        """Full mode only: a fresh 3-member cluster per round."""
        rounds = 10
        kept, extended = leader_kills(self.L, self.work, rounds, self.env)
        self.row(f"3-member cluster, leader SIGKILLed 0.3-1 s into a 5 s hold, default TTL: "
                 f"holders that keep their lock", "",
                 f"{kept} of {rounds} (deadline extended in {extended})", "", "", None)


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
            if not quick:
                b.leader_kill()
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


if __name__ == "__main__":
    # python3 scripts/bench_etcd.py leader-kills LOCKRUN [ROUNDS]: that row alone.
    if len(sys.argv) >= 3 and sys.argv[1] == "leader-kills":
        if not shutil.which("etcd"):
            sys.exit("SKIPPED: `etcd` is not installed")
        n = int(sys.argv[3]) if len(sys.argv) > 3 else 10
        e = {k: v for k, v in os.environ.items()
             if k not in ("LOCKRUN_BACKEND", "LOCKRUN_DIR", "LOCKRUN_TIMEOUT", "LOCKRUN_DEBUG")}
        with tempfile.TemporaryDirectory(prefix="lockrun-bench-etcd-") as w:
            def show(r, c, ext, text):
                print(f"round {r}: exit {c}{', deadline extended' if ext else ''}",
                      file=sys.stderr)
                if (c != 0 or ext) and os.environ.get("BENCH_SHOW_TRACE"):
                    print(text, file=sys.stderr)
            k, x = leader_kills(sys.argv[2], w, n, e, show)
        print(f"{k} of {n} holders kept their lock (deadline extended in {x})")
