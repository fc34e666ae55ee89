"""Gossip figures: convergence of N node processes to a full mesh, and heartbeat CPU cost.

`ck` nodes run clusterkit's Gossip strategy (`python -c GOSSIP_AGENT`); `erl` nodes run
tests/erl/gossip_heartbeat.escript's peer mode, a real Erlang node that gossips the way
libcluster's Gossip does (same wire, same secret, same 1-5000 ms interval, connect on
the first heartbeat heard). There is no libcluster here (no hex packages), so that
escript stands in for it. Every run has its own UDP port on the loopback interface.

Times are read in this process, as each node's lines arrive: "ready" when its gossip
starts, "nodeup X" per peer. Convergence is counted from the moment the last node's
gossip started: its first heartbeat goes out at once, so with no loss the mesh can form
in one round trip, one connect (EPMD lookup, handshake, ping) after it. That connect,
measured in the same run for each kind, is the lower bound, and the ratio is to it.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

from .harness import HAVE_ERLANG, ROOT, BenchError, Session, median, wait_until

ESCRIPT = ROOT / "tests" / "erl" / "gossip_heartbeat.escript"
GROUP = "233.252.1.32"
MAX_INTERVAL_MS = 5000        # libcluster's :rand.uniform(5_000)

GOSSIP_AGENT = r"""
import sys
import clusterkit as ck
from clusterkit.runtime.loop import tune_switch_interval
tune_switch_interval()
name, cookie, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ck.start(name, cookie=cookie)
ck.net_kernel.monitor_nodes(True)
ck.cluster.start({"bench": {"strategy": "gossip",
                            "config": {"port": port, "secret": cookie}}})
print("ready", name, flush=True)
while True:
    m = ck.receive()
    if type(m) is tuple and len(m) == 2 and m[0] in ("nodeup", "nodedown"):
        sys.stdout.write(f"{m[0]} {m[1]}\n")   # one write: a line never splits
        sys.stdout.flush()
"""


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


class _Member:
    """One gossiping node process; its lines are timestamped as they arrive."""

    def __init__(self, session: Session, kind: str, name: str, cookie: str, port: int):
        self.name = name
        if kind == "ck":
            args = [sys.executable, "-u", "-c", GOSSIP_AGENT, name, cookie, str(port)]
        else:
            args = ["escript", str(ESCRIPT), "peer", name, cookie, str(port), GROUP, cookie,
                    str(MAX_INTERVAL_MS)]
        # stderr (log lines) apart: only this process's own lines come on stdout.
        self.proc = session.popen(args, stderr=subprocess.DEVNULL)
        self.ready: float | None = None
        self.up: dict[str, float] = {}
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for raw in self.proc.stdout:
            now = time.monotonic()
            line = raw.decode("utf-8", "replace").strip()
            self.lines.append(line)
            if line.startswith("ready ") and self.ready is None:
                self.ready = now
            elif line.startswith("nodeup "):
                self.up.setdefault(line.split()[1], now)
            elif line.startswith("nodedown "):
                self.up.pop(line.split()[1], None)

    def cpu_seconds(self) -> float:
        """CPU time of the process and its children (escript runs erl), from the
        scheduler's per-thread nanosecond counters (/proc/.../schedstat): /proc/.../stat
        counts in 10 ms ticks, too coarse for a node that is mostly idle."""
        import psutil
        try:
            pids = [self.proc.pid] + [c.pid for c in
                                      psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0
        for pid in pids:
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tasks:
                try:
                    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                        total += int(f.read().split()[0])
                except (OSError, ValueError, IndexError):
                    pass
        return total / 1e9

    def kill(self):
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass


def _one_cluster(session: Session, kind: str, n: int, cpu_window: float | None, tag: str):
    """Start n members at once; (seconds from spawn, seconds from the last ready, cpu)."""
    port = _free_udp_port()
    cookie = f"bench_gossip_{tag}"
    t0 = time.monotonic()
    members = [_Member(session, kind, session.fresh_name(f"g{kind}{tag}x"), cookie, port)
               for _ in range(n)]
    try:
        names = {m.name for m in members}

        def meshed():
            return all(m.ready is not None and names - {m.name} <= set(m.up) for m in members)
        try:
            wait_until(meshed, 180, f"{n} {kind} gossip nodes to form a full mesh",
                       interval=0.01)
        except BenchError:
            worst = min(members, key=lambda m: len(m.up))
            raise BenchError(f"{n} {kind} nodes: no full mesh within 180 s; {worst.name} "
                             f"saw {len(worst.up)}; its output:\n"
                             + "\n".join(worst.lines[-20:])) from None
        mesh = max(max(m.up[x] for x in names - {m.name}) for m in members)
        last_ready = max(m.ready for m in members)
        cpu = None
        if cpu_window:
            before = [m.cpu_seconds() for m in members]
            time.sleep(cpu_window)
            after = [m.cpu_seconds() for m in members]
            cpu = [(b - a) / cpu_window for a, b in zip(before, after)]
        return mesh - t0, mesh - last_ready, cpu
    finally:
        for m in members:
            m.kill()
        for m in members:
            try:
                m.proc.wait(5)
            except Exception:
                pass


def _bound(session: Session, kind: str, rounds: int) -> list[float]:
    """One connect between two running nodes (EPMD lookup, handshake, ping), in ms."""
    cookie = "bench_gossip_bound"
    target = session.agent(kind, session.fresh_name(f"gb{kind}t"), cookie)
    times = []
    try:
        for _ in range(rounds):
            fresh = session.agent(kind, session.fresh_name(f"gb{kind}f"), cookie)
            try:
                times.append(fresh.connect(target.name) / 1e6)
            finally:
                fresh.halt()
                fresh.kill()
    finally:
        target.halt()
        target.kill()
    return times


def gossip(session: Session, sizes=(4, 16, 32), rounds: int = 2, bound_rounds: int = 4,
           cpu_window: float = 10.0, with_erlang: bool = HAVE_ERLANG, log=None) -> dict:
    kinds = ["ck", "erl"] if with_erlang else ["ck"]
    bound = {k: median(_bound(session, k, bound_rounds)) for k in kinds}
    conv = {(k, n): [] for k in kinds for n in sizes}
    total = {(k, n): [] for k in kinds for n in sizes}
    cpu = {k: [] for k in kinds}
    biggest = max(sizes)
    for r in range(rounds):
        for n in sizes:
            for k in kinds:          # interleaved, as the other figures
                window = cpu_window if (n == biggest and r == 0) else None
                spawn_s, after_s, c = _one_cluster(session, k, n, window, f"{r}{n}")
                total[(k, n)].append(spawn_s * 1e3)
                conv[(k, n)].append(after_s * 1e3)
                if c:
                    cpu[k] += c
                if log:
                    log(f"gossip: {k} N={n} round {r + 1}/{rounds}: mesh {after_s * 1e3:.0f} ms "
                        f"after the last node started gossiping ({spawn_s:.1f} s from spawn)")
    rows = []
    for n in sizes:
        for k in kinds:
            m = median(conv[(k, n)])
            rows.append({"pair": f"{k} N={n}", "case": "after last start", "median": m,
                         "p99": None, "n": len(conv[(k, n)]), "bound_ms": bound[k],
                         "vs_bound": m / bound[k] if bound[k] else None})
            rows.append({"pair": f"{k} N={n}", "case": "from spawn",
                         "median": median(total[(k, n)]), "p99": None,
                         "n": len(total[(k, n)])})
    for k in kinds:
        rows.append({"pair": f"{k} bound", "case": "after last start", "median": bound[k],
                     "p99": None, "n": bound_rounds})
    baselines = {f"{k} N={n}": f"{k} bound" for k in kinds for n in sizes}
    conv_fig = {"id": "gossip", "title": "Gossip: N node processes to a full mesh",
                "unit": "ms", "better": "lower", "baseline": None, "baselines": baselines,
                "target": None, "rows": rows, "checks": {},
                "notes": ["after last start: from the last node's gossip start (its first "
                          "heartbeat goes out at once) to the last nodeup of the mesh; "
                          "× base is the ratio to the one-round-trip bound, a connect "
                          "(EPMD lookup, handshake, ping) measured in the same run. The mesh "
                          "does form in that one round (well under the first 1-5 s heartbeat "
                          "interval); the ratio grows with N because the last node takes N-1 "
                          "handshakes at once, and each new connection starts a global "
                          "exchange with the whole mesh, on this machine's CPUs",
                          "from spawn: from spawning the first of the N processes (start-up "
                          "of N processes on this machine's CPUs included)",
                          "erl: tests/erl/gossip_heartbeat.escript's peer mode, a real Erlang "
                          "node on libcluster's wire and interval (no libcluster here)",
                          "one UDP port per cluster, group 233.252.1.32 on the loopback "
                          "interface, with a secret (AES-256-CBC)"]}
    beats = (biggest - 1) * 1000 / (MAX_INTERVAL_MS / 2)   # heartbeats heard per second
    cpu_rows = []
    for k in kinds:
        if cpu[k]:
            per_s = median(cpu[k]) * 1e3
            cpu_rows.append({"pair": f"{k} N={biggest}", "case": "CPU per node",
                             "median": per_s, "p99": max(cpu[k]) * 1e3, "n": len(cpu[k]),
                             "us_per_heartbeat": per_s * 1e3 / beats})
    cpu_fig = {"id": "gossip_cpu", "title": f"Gossip: CPU per node in a {biggest}-node mesh",
               "unit": "ms CPU/s", "better": "lower",
               "baseline": f"erl N={biggest}" if with_erlang else None, "target": None,
               "rows": cpu_rows, "checks": {},
               "notes": [f"user + system CPU of each node process over {cpu_window:g} s "
                         f"once the mesh is full; each node hears about {beats:.1f} "
                         f"heartbeats a second ({biggest - 1} peers, one every 2.5 s on average) and "
                         "sends 0.4; p99 column: the busiest node",
                         "includes everything else an idle connected node does (ticks, "
                         "global), on both sides"]}
    return {"figures": [conv_fig, cpu_fig]}
