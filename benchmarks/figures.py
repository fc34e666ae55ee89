"""The figures: each measures clusterkit and erl side by side, interleaved, in one run.

A pair is written client→server (or sender→receiver, watcher←peer): `ck` is a
clusterkit node, `erl` a real Erlang node. Every figure returns a dict:

    {"id", "title", "unit", "better": "lower"|"higher", "baseline": pair label,
     "target": {...} or None, "rows": [{"pair", "median", "p99", "n", ...}],
     "checks": {...}, "notes": [...]}

__main__.py adds the ratios and verdicts and prints the table. Nothing here asserts a
timing; the checks (no message lost, order kept) are what the tests look at.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from .harness import (ERL_NO_EPMD, HAVE_ERLANG, HOST, BenchError, Session, epmd_names,
                      median, percentile, rss_bytes, wait_until)

PAIRS = [("ck", "ck"), ("ck", "erl"), ("erl", "ck"), ("erl", "erl")]
ERL_PAIR = "erl→erl"


def pairs(with_erlang: bool = HAVE_ERLANG):
    return PAIRS if with_erlang else [("ck", "ck")]


def label(a: str, b: str, arrow: str = "→") -> str:
    return f"{a}{arrow}{b}"


def _say(log, text):
    if log:
        log(text)


def _boot_pairs(session: Session, prefix: str, kinds, net_ticktime=None):
    """One isolated two-node cluster per pair (own names, own cookie), booted side by side."""
    agents = []
    for i, (a, b) in enumerate(kinds):
        cookie = f"bench_{prefix}_{i}"
        left = session.agent(a, session.fresh_name(f"{prefix}{a}l"), cookie, wait=False,
                             net_ticktime=net_ticktime)
        right = session.agent(b, session.fresh_name(f"{prefix}{b}r"), cookie, wait=False,
                              net_ticktime=net_ticktime)
        agents.append((left, right))
    for left, right in agents:
        session.boot(left)
        session.boot(right)
    return agents


def _stop(agents):
    for a in agents:
        a.halt()
    for a in agents:
        a.kill()


def _flat(pairs_):
    return [a for p in pairs_ for a in p]


# --- round trip ----------------------------------------------------------------------

def round_trip(session: Session, rounds: int = 5, per_round: int = 2000,
               warmup: int = 1000, kinds=None, log=None) -> dict:
    kinds = kinds or pairs()
    agents = _boot_pairs(session, "rt", kinds)
    try:
        for client, server in agents:
            server.echo_server()
            if client.ping(server.name) != "pong":
                raise BenchError(f"{client.name} cannot reach {server.name}")
        for client, server in agents:
            client.rtt(server.name, warmup)
        times = {label(a, b): [] for a, b in kinds}
        errors = {label(a, b): 0 for a, b in kinds}
        for r in range(rounds):
            for (a, b), (client, server) in zip(kinds, agents):
                t, e = client.rtt(server.name, per_round)
                if len(t) != per_round:
                    raise BenchError(f"{label(a, b)}: {len(t)} of {per_round} round trips")
                times[label(a, b)] += t
                errors[label(a, b)] += e
            _say(log, f"round trip: round {r + 1}/{rounds}")
    finally:
        _stop(_flat(agents))
    rows = [{"pair": p, "median": median(v) / 1e3, "p99": percentile(v, 99) / 1e3,
             "n": len(v)} for p, v in times.items()]
    return {"id": "round_trip", "title": "Round trip to a registered echo process",
            "unit": "µs", "better": "lower", "baseline": ERL_PAIR,
            "target": {"op": "<=", "ratio": 2.0, "text": "≤ 2× erl→erl"},
            "rows": rows,
            "checks": {"wrong_or_out_of_order_replies": errors, "lost": 0},
            "notes": [f"{rounds} interleaved rounds of {per_round} round trips per pair "
                      f"after {warmup} warm-up trips; client→server"]}


# --- throughput ----------------------------------------------------------------------

def throughput(session: Session, rounds: int = 5, per_round: int = 20000,
               warmup: int = 5000, kinds=None, log=None) -> dict:
    kinds = kinds or pairs()
    agents = _boot_pairs(session, "tp", kinds)
    try:
        for sender, sink in agents:
            sink.sink_server()
            if sender.ping(sink.name) != "pong":
                raise BenchError(f"{sender.name} cannot reach {sink.name}")
        for sender, sink in agents:
            sender.tput(sink.name, warmup)
        rates = {label(a, b): [] for a, b in kinds}
        totals = {label(a, b): [0, 0] for a, b in kinds}
        errors = {label(a, b): 0 for a, b in kinds}
        lost = {label(a, b): 0 for a, b in kinds}
        for r in range(rounds):
            for (a, b), (sender, sink) in zip(kinds, agents):
                ns, count, err = sender.tput(sink.name, per_round)
                p = label(a, b)
                rates[p].append(per_round / (ns / 1e9))
                totals[p][0] += per_round
                totals[p][1] += ns
                errors[p] += err
                lost[p] += per_round - count
            _say(log, f"throughput: round {r + 1}/{rounds}")
    finally:
        _stop(_flat(agents))
    rows = [{"pair": p, "median": median(v), "p99": None, "n": totals[p][0],
             "overall": totals[p][0] / (totals[p][1] / 1e9), "batches": len(v)}
            for p, v in rates.items()]
    return {"id": "throughput", "title": "One-way throughput of {msg, N, <<\"x\">>}",
            "unit": "msg/s", "better": "higher", "baseline": ERL_PAIR,
            "target": {"op": ">=", "ratio": 0.5, "text": "≥ 0.5× erl→erl"},
            "rows": rows, "checks": {"lost": lost, "out_of_order": errors},
            "notes": [f"{rounds} interleaved batches of {per_round} messages per pair after "
                      f"{warmup} warm-up; timed from the first send to the receiver's "
                      "acknowledgement of the last; median over batches"]}


# --- connect -------------------------------------------------------------------------

def connect(session: Session, rounds: int = 6, reconnects: int = 3, kinds=None,
            log=None) -> dict:
    kinds = kinds or pairs()
    cookie = "bench_connect"
    target_kinds = sorted({b for _, b in kinds})
    targets = {k: session.agent(k, session.fresh_name(f"ct{k}"), cookie, wait=False)
               for k in target_kinds}
    for t in targets.values():
        session.boot(t)
    first = {label(a, b): [] for a, b in kinds}
    again = {label(a, b): [] for a, b in kinds}
    try:
        for r in range(rounds):
            for a, b in kinds:
                fresh = session.agent(a, session.fresh_name(f"cf{a}"), cookie)
                try:
                    target = targets[b].name
                    first[label(a, b)].append(fresh.connect(target))
                    for _ in range(reconnects):
                        again[label(a, b)].append(fresh.reconnect(target, 100))
                finally:
                    _stop([fresh])
            _say(log, f"connect: round {r + 1}/{rounds}")
    finally:
        _stop(list(targets.values()))
    rows = []
    for p in first:
        rows.append({"pair": p, "case": "first", "median": median(first[p]) / 1e6,
                     "p99": None, "n": len(first[p])})
    for p in again:
        rows.append({"pair": p, "case": "reconnect", "median": median(again[p]) / 1e6,
                     "p99": None, "n": len(again[p])})
    return {"id": "connect", "title": "Connect: EPMD lookup + handshake + first ping",
            "unit": "ms", "better": "lower", "baseline": ERL_PAIR,
            "target": {"op": "<=", "ratio": 1.5, "text": "≤ 1.5× erl", "case": "first"},
            "rows": rows, "checks": {},
            "notes": [f"first: a freshly started node (start-up not timed) pings the target; "
                      f"{rounds} fresh nodes per pair",
                      f"reconnect: that node disconnects, waits 100 ms and pings again; "
                      f"{reconnects} per fresh node"]}


# --- failure detection ---------------------------------------------------------------

def failure(session: Session, kill_rounds: int = 8, stop_rounds: int = 5,
            ticktime: int = 4, kinds=None, log=None) -> dict:
    """watcher←peer: the watcher monitors nodes, the peer is killed or frozen."""
    kinds = kinds or pairs()
    cookie = "bench_failure"
    watchers = {}
    for i, (w, _p) in enumerate(kinds):
        watchers[i] = session.agent(w, session.fresh_name(f"fw{w}"), f"{cookie}{i}",
                                    wait=False, net_ticktime=ticktime)
    for w in watchers.values():
        session.boot(w)

    def peers():
        ps = [session.agent(p, session.fresh_name(f"fp{p}"), f"{cookie}{i}", wait=False,
                            net_ticktime=ticktime) for i, (_w, p) in enumerate(kinds)]
        for p in ps:
            session.boot(p)
        return ps

    rng = random.Random()
    killed = {label(w, p, "←"): [] for w, p in kinds}
    frozen = {label(w, p, "←"): [] for w, p in kinds}
    try:
        for r in range(kill_rounds):
            ps = peers()
            for i, (w, p) in enumerate(kinds):
                watchers[i].watch(ps[i].name)
                time.sleep(0.05)
                t0 = time.time_ns()
                ps[i].signal(signal.SIGKILL)
                killed[label(w, p, "←")].append(watchers[i].watch_result(30) - t0)
            _stop(ps)
            _say(log, f"failure detection (SIGKILL): round {r + 1}/{kill_rounds}")
        for r in range(stop_rounds):
            # The pairs wait side by side: the wait is net_ticktime, not CPU.
            ps = peers()
            for i in range(len(kinds)):
                watchers[i].watch(ps[i].name)
            # Freeze in the steady state, at a random point of the tick cycle. Right
            # after connecting, the first tick still sees the set-up traffic, and
            # clusterkit ticks per connection (erl per node): a fixed short delay would
            # always add one tick interval to clusterkit's time and not to erl's.
            time.sleep(ticktime / 2 + rng.uniform(0, ticktime / 4))
            starts = []
            for p in ps:
                starts.append(time.time_ns())
                p.signal(signal.SIGSTOP)
            for i, (w, p) in enumerate(kinds):
                frozen[label(w, p, "←")].append(
                    watchers[i].watch_result(6 * ticktime + 10) - starts[i])
            _stop(ps)
            _say(log, f"failure detection (SIGSTOP): round {r + 1}/{stop_rounds}")
    finally:
        _stop(list(watchers.values()))
    rows = []
    for p, v in killed.items():
        rows.append({"pair": p, "case": "SIGKILL", "median": median(v) / 1e6,
                     "p99": None, "n": len(v), "max": max(v) / 1e6})
    for p, v in frozen.items():
        if not v:
            continue
        rows.append({"pair": p, "case": f"SIGSTOP, ticktime {ticktime}",
                     "median": median(v) / 1e6, "p99": None, "n": len(v),
                     "min": min(v) / 1e6, "max": max(v) / 1e6})
    return {"id": "failure", "title": "Failure detection: signal to nodedown",
            "unit": "ms", "better": "lower", "baseline": label("erl", "erl", "←"),
            "target": {"op": "within", "ratio": 0.10, "text": "within 10% of erl"},
            "rows": rows, "checks": {},
            "notes": ["watcher←peer: the watcher runs monitor_nodes and waits for nodedown; "
                      "the clock is the wall clock, read by the benchmark before the signal "
                      "and by the watcher when nodedown arrives",
                      f"both sides at net_ticktime {ticktime} (erl: -kernel net_ticktime "
                      f"{ticktime}): Erlang drops a silent peer after "
                      f"{ticktime * 0.75:g}..{ticktime * 1.25:g} s",
                      f"SIGKILL: {kill_rounds} rounds, pairs one after another; SIGSTOP: "
                      f"{stop_rounds} rounds, the pairs of a round frozen together, "
                      f"{ticktime / 2:g}..{ticktime * 0.75:g} s after connecting (a random "
                      "point of the tick cycle, past the set-up traffic)"]}


# --- start-up and memory -------------------------------------------------------------

def _node_process(session: Session, kind: str, name: str, cookie: str) -> subprocess.Popen:
    if kind == "ck":
        args = [sys.executable, "-m", "clusterkit", "node", "--name", name,
                "--cookie", cookie]
    else:
        args = ["erl", "-noshell", "-name", name, "-setcookie", cookie, *ERL_NO_EPMD]
    return session.popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


LAB_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[2])
from benchmarks.harness import rss_bytes
t0 = time.perf_counter()
from clusterkit.lab import Lab
t1 = time.perf_counter()
lab = Lab(epmd_port=int(sys.argv[1]))
try:
    lab.start("a", "b", "c")
    elapsed = time.perf_counter() - t1
    ok = [lab.run(n, "Node.self()").value.strip() for n in ("a", "b", "c")]
    time.sleep(1.0)
    rss = [rss_bytes(n.pid) for n in lab.nodes.values()]
    print("@@R " + json.dumps({"s": elapsed, "import_s": t1 - t0, "rss": rss, "self": ok}),
      flush=True)
finally:
    lab.shutdown()
"""


def startup(session: Session, rounds: int = 6, lab_rounds: int = 3, idle: float = 1.0,
            with_erlang: bool = HAVE_ERLANG, log=None) -> dict:
    kinds = ["ck", "erl"] if with_erlang else ["ck"]
    start_s = {k: [] for k in kinds}
    rss = {k: [] for k in kinds}
    for r in range(rounds):
        for kind in kinds:
            name = session.fresh_name(f"su{kind}")
            alive = name.split("@")[0]
            t0 = time.perf_counter()
            proc = _node_process(session, kind, name, "bench_startup")
            try:
                wait_until(lambda: alive in epmd_names(session.epmd_port), 60,
                           f"{name} in EPMD", interval=0.005)
                start_s[kind].append(time.perf_counter() - t0)
                time.sleep(idle)
                rss[kind].append(rss_bytes(proc.pid))
            finally:
                _kill(proc)
        _say(log, f"start-up: round {r + 1}/{rounds}")
    lab_s, lab_rss, erl3_s, lab_import = [], [], [], []
    from .harness import ROOT
    for r in range(lab_rounds):
        t0 = time.perf_counter()
        proc = session.popen([sys.executable, "-c", LAB_SCRIPT, str(session.epmd_port),
                              str(ROOT)], stdin=subprocess.DEVNULL)
        try:
            out, _ = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise BenchError("the lab did not start three kernels within 180 s")
        lines = [l for l in out.decode("utf-8", "replace").splitlines()
                 if l.startswith("@@R ")]
        if not lines:
            raise BenchError("the lab run printed no result:\n" + out.decode()[-3000:])
        res = json.loads(lines[-1][4:])
        if sorted(res["self"]) != sorted(f"Atom('{n}@{HOST}')" for n in "abc"):
            raise BenchError(f"lab kernels are not the nodes a, b, c: {res['self']}")
        lab_s.append(res["s"])
        lab_import.append(res["import_s"])
        lab_rss += res["rss"]
        wait_until(lambda: not ({"a", "b", "c"} & epmd_names(session.epmd_port)), 30,
                   "the lab's nodes to leave EPMD")
        if with_erlang:
            names = [session.fresh_name("su3e") for _ in range(3)]
            t0 = time.perf_counter()
            procs = [_node_process(session, "erl", n, "bench_startup") for n in names]
            try:
                wanted = {n.split("@")[0] for n in names}
                wait_until(lambda: wanted <= epmd_names(session.epmd_port), 60,
                           "three erl nodes in EPMD")
                erl3_s.append(time.perf_counter() - t0)
            finally:
                for p in procs:
                    _kill(p)
        _say(log, f"start-up (lab): round {r + 1}/{lab_rounds}")
    rows = [{"pair": "ck node", "case": "start", "median": median(start_s["ck"]) * 1e3,
             "p99": None, "n": len(start_s["ck"])}]
    if with_erlang:
        rows.append({"pair": "erl node", "case": "start",
                     "median": median(start_s["erl"]) * 1e3, "p99": None,
                     "n": len(start_s["erl"])})
    rows.append({"pair": "lab: 3 kernels", "case": "start", "median": median(lab_s) * 1e3,
                 "p99": None, "n": len(lab_s), "max": max(lab_s) * 1e3,
                 "import_ms": median(lab_import) * 1e3,
                 "target": {"op": "<", "abs": 3000.0, "text": "< 3 s"}})
    if with_erlang:
        rows.append({"pair": "3 erl nodes", "case": "start", "median": median(erl3_s) * 1e3,
                     "p99": None, "n": len(erl3_s)})
    mem = [{"pair": "ck node", "case": "idle RSS", "median": median(rss["ck"]) / 2**20,
            "p99": None, "n": len(rss["ck"])},
           {"pair": "lab kernel", "case": "idle RSS", "median": median(lab_rss) / 2**20,
            "p99": None, "n": len(lab_rss)}]
    if with_erlang:
        mem.insert(1, {"pair": "erl node", "case": "idle RSS",
                       "median": median(rss["erl"]) / 2**20, "p99": None,
                       "n": len(rss["erl"])})
    start_fig = {"id": "startup", "title": "Start-up: process start until registered in EPMD",
                 "unit": "ms", "better": "lower", "baseline": "erl node",
                 "baselines": {"lab: 3 kernels": "3 erl nodes", "3 erl nodes": "3 erl nodes"},
                 "target": None, "rows": rows, "checks": {},
                 "notes": ["ck node: `python -m clusterkit node --name ...`; erl node: "
                           "`erl -noshell -name ... -start_epmd false` (epmd is running "
                           "already); timed from spawn until EPMD lists it",
                           "lab: `Lab().start(\"a\",\"b\",\"c\")` timed in its own process "
                           "(three Jupyter kernels; `import clusterkit.lab` before it took "
                           f"{median(lab_import) * 1e3:.0f} ms and is not counted), against "
                           "three erl nodes started at once"]}
    mem_fig = {"id": "memory", "title": "Idle memory (RSS) per node",
               "unit": "MiB", "better": "lower", "baseline": "erl node", "target": None,
               "rows": mem, "checks": {},
               "notes": [f"RSS of the node process and its children, {idle:g} s after it "
                         "registered; a lab kernel is a whole Jupyter kernel"]}
    return {"figures": [start_fig, mem_fig]}


# --- term codec ----------------------------------------------------------------------

def term_set():
    """A mixed term set (clusterkit's Python spelling), as one list term."""
    from clusterkit.etf import Atom, Pid
    user = {"name": "Ada Lovelace", "email": "ada@example.org", "age": 36,
            "roles": [Atom("admin"), Atom("dev")], "score": 0.75, "active": True}
    return [
        Atom("ok"), 42, -7, 1 << 40, 1 << 100, 3.141592653589793, None,
        "hello, world", "héllo wörld ✓", b"\x00\x01\x02binary\xff",
        (Atom("msg"), 17, b"x"),
        (Atom("user"), 1234, user),
        [user, user, user],
        list(range(50)),
        [(Atom("key"), i, str(i)) for i in range(20)],
        {Atom("a"): 1, Atom("b"): [1.5, 2.5], Atom("c"): ("x", "y")},
        "x" * 1000,
        Pid(Atom("a@127.0.0.1"), 42, 0, 1),
        ((((((((1,),),),),),),),),
    ]


def small_message():
    from clusterkit.etf import Atom
    return (Atom("msg"), 17, b"x")


def _bench(fn, arg, min_time: float) -> tuple[float, int]:
    """Calls per second of fn(arg), over at least min_time seconds."""
    n = 0
    batch = 1
    t0 = time.perf_counter()
    while True:
        for _ in range(batch):
            fn(arg)
        n += batch
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            return n / elapsed, n
        batch = min(batch * 2, 4096)


def codec_sides():
    """(name, encode, decode, to_native) for each Python codec that is installed."""
    from clusterkit import etf
    sides = [("clusterkit", etf.encode, etf.decode, lambda b: etf.decode(b))]
    try:
        import erlang  # erlang_py, PyPI erlang-py
    except ImportError:
        return sides, "erlang_py is not installed (pip install erlang-py): " \
                      "the comparison with it is skipped"
    sides.append(("erlang_py", erlang.term_to_binary, erlang.binary_to_term,
                  erlang.binary_to_term))
    return sides, None


def codec_check():
    """Each codec decodes the set to its own spelling and encodes it back to the same term."""
    from clusterkit import etf
    sides, note = codec_sides()
    problems = []
    for workload in (term_set(), small_message()):
        data = etf.encode(workload)
        for name, enc, dec, native in sides:
            value = native(data)
            again = enc(value)
            if etf.decode(again) != etf.decode(data):
                problems.append(f"{name} does not round-trip {workload!r:.60}")
            if dec(again) != value and name == "clusterkit":
                problems.append(f"{name} decode(encode(x)) != x")
    return problems, note


def codec(session: Session | None, rounds: int = 5, min_time: float = 0.3,
          erl_iters: int = 20000, log=None) -> dict:
    from clusterkit import etf
    sides, note = codec_sides()
    problems, _ = codec_check()
    if problems:
        raise BenchError("codec check failed: " + "; ".join(problems))
    workloads = {"mixed set": term_set(), "small message": small_message()}
    erl = None
    if session is not None and HAVE_ERLANG:
        erl = session.erl_agent(session.fresh_name("codec"), "bench_codec")
    rows = []
    try:
        for wname, term in workloads.items():
            data = etf.encode(term)
            natives = {name: native(data) for name, _e, _d, native in sides}
            rates = {(name, op): [] for name, *_ in sides for op in ("decode", "encode")}
            if erl is not None:
                rates.update({("erl", "decode"): [], ("erl", "encode"): []})
            for r in range(rounds):
                for name, enc, dec, _native in sides:
                    rates[(name, "decode")].append(_bench(dec, data, min_time)[0])
                    rates[(name, "encode")].append(_bench(enc, natives[name], min_time)[0])
                if erl is not None:
                    dec_ns, enc_ns = erl.codec(data, erl_iters)
                    rates[("erl", "decode")].append(erl_iters / (dec_ns / 1e9))
                    rates[("erl", "encode")].append(erl_iters / (enc_ns / 1e9))
                _say(log, f"codec ({wname}): round {r + 1}/{rounds}")
            for (name, op), v in rates.items():
                per_s = median(v)
                rows.append({"pair": name, "case": f"{op}, {wname}",
                             "median": per_s * len(data) / 2**20, "p99": None,
                             "n": len(v), "terms_per_s": per_s, "bytes": len(data)})
    finally:
        if erl is not None:
            _stop([erl])
    notes = ["the same bytes for everyone: clusterkit's encoding of the workload; each "
             "codec encodes its own decoded form of them",
             f"mixed set: one list of {len(term_set())} varied terms "
             f"({len(etf.encode(term_set()))} bytes); small message: {{msg, 17, <<\"x\">>}}",
             f"MiB/s of encoded bytes, median of {rounds} interleaved rounds of ≥ "
             f"{min_time:g} s each"]
    if erl is not None:
        notes.append("erl (term_to_binary/binary_to_term, native code) is shown for scale")
    if note:
        notes.append(note)
    return {"id": "codec", "title": "Term codec throughput", "unit": "MiB/s",
            "better": "higher", "baseline": "erl" if erl is not None else None,
            "target": {"op": ">", "ratio": 1.0, "against": "erlang_py",
                       "text": "faster than erlang_py"},
            "rows": rows, "checks": {"round_trip_problems": problems}, "notes": notes}


# --- the floor: two bare asyncio processes --------------------------------------------

def _asyncio_server(session: Session) -> tuple[subprocess.Popen, int]:
    p = session.popen([sys.executable, "-m", "benchmarks.asyncio_echo", "server"],
                      stdin=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line.startswith("@@PORT "):
        raise BenchError(f"the asyncio echo server did not start: {line!r}")
    return p, int(line.split()[1])


def _asyncio_client(session: Session, port: int, mode: str, n: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.asyncio_echo", "client",
                          str(port), mode, str(n)], env=session.env, capture_output=True,
                         text=True, timeout=300)
    if out.returncode != 0:
        raise BenchError(f"the asyncio echo client failed: {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout.splitlines()[-1])


ASYNCIO_PAIR = "py→py (bare asyncio)"


def floor(session: Session, rounds: int = 5, per_round: int = 2000, burst: int = 20000,
          log=None) -> dict:
    """What two Python processes cost with nothing of a node in them, beside ck→ck and
    erl→erl measured in the same rounds: the floor under any Python node."""
    kinds = [("ck", "ck")] + ([("erl", "erl")] if HAVE_ERLANG else [])
    agents = _boot_pairs(session, "fl", kinds)
    server, port = _asyncio_server(session)
    try:
        for client, other in agents:
            other.echo_server()
            other.sink_server()
            if client.ping(other.name) != "pong":
                raise BenchError(f"{client.name} cannot reach {other.name}")
            client.rtt(other.name, 200)
        _asyncio_client(session, port, "rtt", 200)
        times = {ASYNCIO_PAIR: [], **{label(a, b): [] for a, b in kinds}}
        rates = {p: [] for p in times}
        for r in range(rounds):
            times[ASYNCIO_PAIR] += _asyncio_client(session, port, "rtt", per_round)["times"]
            out = _asyncio_client(session, port, "tput", burst)
            rates[ASYNCIO_PAIR].append(out["n"] / (out["ns"] / 1e9))
            for (a, b), (client, other) in zip(kinds, agents):
                t, _errors = client.rtt(other.name, per_round)
                times[label(a, b)] += t
                ns, count, _errors = client.tput(other.name, burst)
                rates[label(a, b)].append(count / (ns / 1e9))
            _say(log, f"floor: round {r + 1}/{rounds}")
    finally:
        _kill(server)
        _stop(_flat(agents))
    rt = {"id": "floor_round_trip", "title": "The floor: round trip, bare asyncio beside the nodes",
          "unit": "µs", "better": "lower", "baseline": ERL_PAIR, "target": None,
          "rows": [{"pair": p, "median": median(v) / 1e3, "p99": percentile(v, 99) / 1e3,
                    "n": len(v)} for p, v in times.items()],
          "checks": {}, "notes": [
              "bare asyncio: one TCP connection, 4-byte length-prefixed 43-byte frames "
              "echoed by an asyncio server; no codec, no processes"]}
    tp = {"id": "floor_throughput", "title": "The floor: one-way throughput, bare asyncio "
          "beside the nodes", "unit": "msg/s", "better": "higher", "baseline": ERL_PAIR,
          "target": None,
          "rows": [{"pair": p, "median": median(v), "p99": None, "n": burst * len(v)}
                   for p, v in rates.items()],
          "checks": {}, "notes": [f"{rounds} bursts of {burst} frames per pair, timed to "
                                  "the receiver's acknowledgement"]}
    return {"figures": [rt, tp]}


# --- a peer that drains slowly ---------------------------------------------------------

def _duty_cycle(agent, stop_s: float, run_s: float, watch_pid: int, done, peak: list):
    """Freeze and thaw `agent` in turn (a receiver that reads 1 part in N of the time),
    and keep the highest resident memory of the sender seen meanwhile."""
    while not done.is_set():
        agent.signal(signal.SIGSTOP)
        time.sleep(stop_s)
        agent.signal(signal.SIGCONT)
        peak[0] = max(peak[0], rss_bytes(watch_pid))
        time.sleep(run_s)
    agent.signal(signal.SIGCONT)


def slow_peer(session: Session, rounds: int = 3, n: int = 5000, size: int = 4096,
              stop_ms: float = 20, run_ms: float = 5, kinds=None, log=None) -> dict:
    """Send rate to a receiver that is frozen most of the time, and how much the
    sender's memory grows meanwhile: with a busy limit, the sender waits instead of
    queueing without bound (Erlang's dist_buf_busy_limit, 1 MiB)."""
    import threading
    kinds = kinds or pairs()
    agents = _boot_pairs(session, "sp", kinds)
    try:
        for sender, sink in agents:
            sink.sink_server()
            if sender.ping(sink.name) != "pong":
                raise BenchError(f"{sender.name} cannot reach {sink.name}")
            sender.tput(sink.name, 200, size=size)
        rates = {label(a, b): [] for a, b in kinds}
        growth = {label(a, b): [] for a, b in kinds}
        lost = {label(a, b): 0 for a, b in kinds}
        errors = {label(a, b): 0 for a, b in kinds}
        for r in range(rounds):
            for (a, b), (sender, sink) in zip(kinds, agents):
                p = label(a, b)
                before = rss_bytes(sender.pid)
                done, peak = threading.Event(), [before]
                cycler = threading.Thread(target=_duty_cycle, args=(
                    sink, stop_ms / 1e3, run_ms / 1e3, sender.pid, done, peak), daemon=True)
                cycler.start()
                try:
                    ns, count, err = sender.tput(sink.name, n, size=size)
                finally:
                    done.set()
                    cycler.join(10)
                rates[p].append(n / (ns / 1e9))
                growth[p].append(max(0, peak[0] - before) / 2**20)
                lost[p] += n - count
                errors[p] += err
            _say(log, f"slow peer: round {r + 1}/{rounds}")
    finally:
        _stop(_flat(agents))
    rows = [{"pair": p, "median": median(v), "p99": None, "n": n * len(v),
             "sender_rss_growth_mib": round(max(growth[p]), 1)} for p, v in rates.items()]
    return {"id": "slow_peer", "title": f"Send rate to a peer that drains slowly "
            f"({size} B messages; receiver frozen {stop_ms:g} ms of every "
            f"{stop_ms + run_ms:g})", "unit": "msg/s", "better": "higher",
            "baseline": ERL_PAIR, "target": None, "rows": rows,
            "checks": {"lost": lost, "out_of_order": errors},
            "notes": [f"{rounds} bursts of {n} per pair",
                      "the sender's memory growth during a burst (highest resident memory "
                      "less the memory before, MiB): " + ", ".join(
                          f"{r['pair']} {r['sender_rss_growth_mib']}" for r in rows)]}


# --- PubSub --------------------------------------------------------------------------

PUBSUB_BROADCASTS = {1: 4000, 10: 2000, 100: 400}


def _pubsub_cluster(session: Session, kind: str):
    cookie = f"bench_pubsub_{kind}"
    agents = [session.agent(kind, session.fresh_name(f"ps{kind}{i}"), cookie, wait=False)
              for i in range(3)]
    for a in agents:
        session.boot(a)
    for a in agents:
        a.ps_start()
    for other in agents[1:]:
        if agents[0].ping(other.name) != "pong":
            raise BenchError(f"{agents[0].name} cannot reach {other.name}")
    for a in agents:
        wait_until(lambda a=a: a.ps_members() == 3, 15, f"{a.name} to see three workers")
    return agents


def pubsub(session: Session, rounds: int = 3, fanouts=(1, 10, 100),
           broadcasts: dict | None = None, latency_samples: int = 200,
           kinds=None, log=None) -> dict:
    """One publisher, K subscribers spread over three nodes (the publisher's among them):
    clusterkit's PubSub against the same workload on erl nodes with OTP's pg and the
    PG2 adapter's sends (ckbench.erl), cluster by cluster, interleaved."""
    kinds = kinds or (["ck", "erl"] if HAVE_ERLANG else ["ck"])
    broadcasts = {**PUBSUB_BROADCASTS, **(broadcasts or {})}
    clusters = {}
    try:
        for kind in kinds:
            clusters[kind] = _pubsub_cluster(session, kind)
        spread = {}
        for k in fanouts:
            # the first subscriber on another node, then round robin over the three
            counts = [0, 0, 0]
            for j in range(k):
                counts[(j + 1) % 3] += 1
            spread[k] = counts
            for kind, agents in clusters.items():
                for agent, count in zip(agents, counts):
                    if count:
                        agent.ps_subs(f"t{k}", count, agents[0].name)
        rates = {(kind, k): [] for kind in kinds for k in fanouts}
        lat = {(kind, k): [] for kind in kinds for k in fanouts}
        lost = {f"{kind}, {k}": 0 for kind in kinds for k in fanouts}
        out_of_order = dict(lost)
        for kind, agents in clusters.items():       # warm-up
            for k in fanouts:
                agents[0].ps_tput(f"t{k}", max(1, broadcasts[k] // 10), k)
        for r in range(rounds):
            for k in fanouts:
                for kind, agents in clusters.items():
                    n = broadcasts[k]
                    ns, count, errors = agents[0].ps_tput(f"t{k}", n, k)
                    rates[(kind, k)].append(n / (ns / 1e9))
                    lost[f"{kind}, {k}"] += n * k - count
                    out_of_order[f"{kind}, {k}"] += errors
                    lat[(kind, k)] += agents[0].ps_lat(f"t{k}", latency_samples, k)
            _say(log, f"pubsub: round {r + 1}/{rounds}")
    finally:
        _stop([a for agents in clusters.values() for a in agents])
    tput_rows = [{"pair": kind, "case": f"{k} subscribers", "median": median(v), "p99": None,
                  "n": len(v) * broadcasts[k], "deliveries_per_s": median(v) * k}
                 for (kind, k), v in rates.items()]
    lat_rows = [{"pair": kind, "case": f"{k} subscribers", "median": median(v) / 1e3,
                 "p99": percentile(v, 99) / 1e3, "n": len(v)} for (kind, k), v in lat.items()]
    where = "; ".join(f"{k}: {c[0]}/{c[1]}/{c[2]}" for k, c in spread.items())
    common = [f"three nodes per cluster, the publisher on the first; subscribers per node "
              f"(publisher's/second/third) {where}",
              "ck: PubSub.broadcast; erl: OTP's pg with the PG2 adapter's sends "
              "(a forward_to_local to each other node's worker, local dispatch from an ETS "
              "bag, as Phoenix.PubSub does)"]
    base = "erl" if "erl" in kinds else None
    return {"figures": [
        {"id": "pubsub_throughput", "title": "PubSub broadcasts per second, one publisher",
         "unit": "broadcasts/s", "better": "higher", "baseline": base, "target": None,
         "rows": tput_rows, "checks": {"lost": lost, "out_of_order": out_of_order},
         "notes": common + [f"{rounds} interleaved batches per case ({', '.join(f'{k}: {n}' for k, n in broadcasts.items() if k in fanouts)} "
                            "broadcasts), timed from the first broadcast until every "
                            "subscriber reported the last; median over batches"]},
        {"id": "pubsub_latency", "title": "PubSub fan-out latency: broadcast until every "
         "subscriber acknowledged", "unit": "µs", "better": "lower", "baseline": base,
         "target": None, "rows": lat_rows, "checks": {},
         "notes": common + [f"{latency_samples} broadcasts per case and round, one at a time"]},
    ]}
