"""The benchmarks' own correctness, on small counts: no message lost, order kept, every
process cleaned up. Never a timing: what `make bench` measures is not asserted here."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import requires_erlang, wait_for

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import figures  # noqa: E402
from benchmarks.__main__ import annotate, table  # noqa: E402
from benchmarks.harness import (HAVE_ERLANG, BenchError, Session, median,  # noqa: E402
                                percentile)

KINDS = figures.PAIRS if HAVE_ERLANG else [("ck", "ck")]


@pytest.fixture
def session():
    s = Session()
    s.start_epmd()
    yield s
    s.close()


def test_statistics():
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 2, 3]) == 2.5
    values = list(range(1, 101))
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7], 99) == 7


def test_round_trips_all_answered_in_order(session):
    fig = figures.round_trip(session, rounds=2, per_round=150, warmup=20, kinds=KINDS)
    assert [r["pair"] for r in fig["rows"]] == [figures.label(a, b) for a, b in KINDS]
    for row in fig["rows"]:
        assert row["n"] == 300
        assert row["median"] > 0 and row["p99"] >= row["median"]
    assert not any(fig["checks"]["wrong_or_out_of_order_replies"].values())


def test_throughput_every_message_counted_in_order(session):
    fig = figures.throughput(session, rounds=2, per_round=1000, warmup=100, kinds=KINDS)
    for row in fig["rows"]:
        assert row["n"] == 2000 and row["median"] > 0
    assert not any(fig["checks"]["lost"].values())
    assert not any(fig["checks"]["out_of_order"].values())


def test_receivers_notice_a_message_out_of_order(session):
    """The order check can fail: message 2 sent before message 1 is seen by both sinks."""
    kinds = ["ck", "erl"] if HAVE_ERLANG else ["ck"]
    sender = session.py_agent(session.fresh_name("sw"), "bench_swap")
    for kind in kinds:
        sink = session.agent(kind, session.fresh_name(f"sk{kind}"), "bench_swap")
        sink.sink_server()
        assert sender.ping(sink.name) == "pong"
        _ns, count, errors = sender.tput(sink.name, 50, swap=True)
        assert (count, errors) == (50, 2), kind
        _ns, count, errors = sender.tput(sink.name, 50)
        assert (count, errors) == (50, 0), kind


def test_connect_and_reconnect_answer_pong(session):
    fig = figures.connect(session, rounds=1, reconnects=2, kinds=KINDS)
    firsts = [r for r in fig["rows"] if r["case"] == "first"]
    again = [r for r in fig["rows"] if r["case"] == "reconnect"]
    assert len(firsts) == len(KINDS) and all(r["n"] == 1 for r in firsts)
    assert all(r["n"] == 2 for r in again)


def test_failure_detection_sees_every_nodedown(session):
    fig = figures.failure(session, kill_rounds=1, stop_rounds=1, ticktime=1, kinds=KINDS)
    kill = [r for r in fig["rows"] if r["case"] == "SIGKILL"]
    stop = [r for r in fig["rows"] if r["case"].startswith("SIGSTOP")]
    assert len(kill) == len(stop) == len(KINDS)
    # A frozen peer is noticed only after missing ticks, never at once.
    assert all(r["median"] > 500 for r in stop)


def test_codec_sides_round_trip_the_workloads():
    problems, note = figures.codec_check()
    assert problems == []
    fig = figures.codec(None, rounds=1, min_time=0.01)
    names = {r["pair"] for r in fig["rows"]}
    assert "clusterkit" in names
    assert ("erlang_py" in names) == (note is None)


def test_ratios_and_verdicts():
    fig = {"id": "x", "title": "x", "unit": "µs", "better": "lower", "baseline": "erl→erl",
           "target": {"op": "<=", "ratio": 2.0, "text": "≤ 2×"},
           "rows": [{"pair": "ck→ck", "median": 30.0, "n": 1},
                    {"pair": "ck→erl", "median": 10.0, "n": 1},
                    {"pair": "erl→erl", "median": 10.0, "n": 1}]}
    rows = annotate(fig)["rows"]
    assert [r["ratio"] for r in rows] == [3.0, 1.0, 1.0]
    assert [r["verdict"] for r in rows] == ["misses", "meets", None]
    within = {"id": "f", "title": "f", "unit": "ms", "better": "lower", "baseline": "erl←erl",
              "target": {"op": "within", "ratio": 0.1, "text": "±10%"},
              "rows": [{"pair": "ck←ck", "median": 105.0, "n": 1},
                       {"pair": "ck←erl", "median": 85.0, "n": 1},
                       {"pair": "erl←erl", "median": 100.0, "n": 1}]}
    assert [r["verdict"] for r in annotate(within)["rows"]] == ["meets", "misses", None]
    codec = {"id": "c", "title": "c", "unit": "MiB/s", "better": "higher", "baseline": None,
             "target": {"op": ">", "ratio": 1.0, "against": "erlang_py", "text": "faster"},
             "rows": [{"pair": "clusterkit", "case": "decode", "median": 3.0, "n": 1},
                      {"pair": "erlang_py", "case": "decode", "median": 1.0, "n": 1}]}
    rows = annotate(codec)["rows"]
    assert rows[0]["verdict"] == "meets" and rows[0]["vs_erlang_py"] == 3.0
    assert "faster" in table([fig, within, codec])


def test_session_close_kills_every_process():
    s = Session()
    s.start_epmd()
    agents = [s.py_agent(s.fresh_name("k"), "bench_kill")]
    if HAVE_ERLANG:
        agents.append(s.erl_agent(s.fresh_name("k"), "bench_kill"))
    agents[0].signal(signal.SIGSTOP)         # even a frozen one
    procs = list(s.procs)
    s.close()
    assert all(p.poll() is not None for p in procs)
    assert not os.path.exists(s.tmp)


def _processes_using_epmd_port(port: int) -> list:
    import psutil
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if p.info["cmdline"] and str(port) in p.info["cmdline"] and \
                    "epmd" in " ".join(p.info["cmdline"]):
                found.append(p.pid)
            elif p.environ().get("ERL_EPMD_PORT") == str(port):
                found.append(p.pid)
        except (psutil.Error, OSError):
            pass
    return found


def _describe(pids: list) -> list:
    import psutil
    out = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            out.append(f"{pid} {p.status()} {' '.join(p.cmdline())[:200]}")
        except psutil.Error:
            pass                        # gone meanwhile
    return out


def test_ctrl_c_stops_every_process(tmp_path):
    """SIGINT in the middle of a figure: the run ends and leaves no node behind."""
    bench = subprocess.Popen([sys.executable, "-m", "benchmarks", "--quick", "--only",
                              "round_trip", "--out", str(tmp_path / "r.json")],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    port = None
    deadline = time.monotonic() + 60
    lines = []
    try:
        while time.monotonic() < deadline:
            line = bench.stderr.readline().decode()
            lines.append(line)
            if "private epmd on port" in line:
                port = int(line.rsplit(" ", 1)[1])
            if "round_trip ..." in line:
                break
        assert port is not None, "".join(lines)
        # interrupt once the figure's nodes are up, so there is something to clean up
        wait_for(lambda: len(_processes_using_epmd_port(port)) >= 2, timeout=30,
                 what="the benchmark's nodes to start (beside its epmd)")
        os.kill(bench.pid, signal.SIGINT)
        _out, err = bench.communicate(timeout=60)
        assert bench.returncode == 130, err.decode(errors="replace")[-3000:]
        try:
            wait_for(lambda: not _processes_using_epmd_port(port), timeout=10,
                     what="every process to stop")
        except AssertionError:
            pass                              # the assertion below says which ones
        assert _describe(_processes_using_epmd_port(port)) == []
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
            bench.wait()


@requires_erlang
def test_erl_agent_reports_errors_not_hangs(session):
    erl = session.erl_agent(session.fresh_name("bad"), "bench_bad")
    with pytest.raises(BenchError):
        erl.call("no_such_command")
    assert erl.call("node") == erl.name


def test_floor_measures_bare_asyncio_beside_the_nodes(session):
    out = figures.floor(session, rounds=1, per_round=50, burst=200)
    rt, tp = out["figures"]
    assert rt["rows"][0]["pair"] == figures.ASYNCIO_PAIR and rt["rows"][0]["n"] == 50
    assert all(r["median"] > 0 for r in rt["rows"] + tp["rows"])


def test_slow_peer_loses_nothing_and_leaves_the_receiver_running(session):
    fig = figures.slow_peer(session, rounds=1, n=200, size=4096, kinds=KINDS)
    assert [r["pair"] for r in fig["rows"]] == [figures.label(a, b) for a, b in KINDS]
    assert not any(fig["checks"]["lost"].values())
    assert not any(fig["checks"]["out_of_order"].values())


def test_pubsub_every_broadcast_reaches_every_subscriber_in_order(session):
    out = figures.pubsub(session, rounds=1, latency_samples=5, fanouts=(1, 10),
                         broadcasts={1: 50, 10: 20})
    tput, lat = out["figures"]
    want = ["ck", "erl"] if HAVE_ERLANG else ["ck"]
    assert sorted({r["pair"] for r in tput["rows"]}) == want
    assert all(r["median"] > 0 for r in tput["rows"] + lat["rows"])
    assert not any(tput["checks"]["lost"].values())
    assert not any(tput["checks"]["out_of_order"].values())
    assert all(r["n"] == 5 for r in lat["rows"])
