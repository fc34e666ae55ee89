"""The clusterkit side of the benchmarks: a node process that runs whole measuring loops.

Started by benchmarks/harness.py as `python -u pyagent.py`. It reads one JSON command
per line on stdin, runs it, and prints "@@R " + JSON. Only commands travel over stdin,
never one per message: each loop runs here, through clusterkit's public API, the way a
learner's script would (`ck.send`, `ck.receive`, a thread per process).

Mirrors benchmarks/ckbench.erl command for command.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time

import clusterkit as ck
from clusterkit import Atom
from clusterkit.runtime.loop import tune_switch_interval

tune_switch_interval()      # a benchmark node process exists to be a node

ECHO, MSG, START, DONE = Atom("echo"), Atom("msg"), Atom("start"), Atom("done")
NODEDOWN = Atom("nodedown")
_now = time.perf_counter_ns


def reply(value) -> None:
    sys.stdout.write("@@R " + json.dumps(value) + "\n")
    sys.stdout.flush()


def _serve(name: str, body) -> None:
    ready = threading.Event()

    def run():
        ck.register(name, ck.self())
        ready.set()
        body()

    threading.Thread(target=run, name=name, daemon=True).start()
    ready.wait(10)


def echo_loop() -> None:
    receive, send = ck.receive, ck.send
    while True:
        m = receive()
        if type(m) is tuple and len(m) == 2:
            send(m[0], (ECHO, m[1]))


def sink_loop() -> None:
    receive, send = ck.receive, ck.send
    while True:
        m = receive()
        if not (type(m) is tuple and len(m) == 3 and m[0] == START):
            continue
        _, sender, n = m
        got = errors = 0
        while got < n:
            m = receive()
            if type(m) is tuple and len(m) == 3 and m[0] == MSG:
                got += 1
                # b"x..." arrives as "x...": a binary that is valid UTF-8 decodes to str.
                if m[1] != got or m[2][:1] != "x":
                    errors += 1
        send(sender, (DONE, n, errors))


def rtt(node: str, n: int) -> dict:
    me = ck.self()
    dest = ("echo", node)
    send, receive = ck.send, ck.receive
    times = []
    errors = 0
    for i in range(n):
        t0 = _now()
        send(dest, (me, i))
        try:
            m = receive(timeout=10)
        except ck.ReceiveTimeout:
            return {"lost": i, "errors": errors}
        times.append(_now() - t0)
        if m != (ECHO, i):
            errors += 1
    return {"ok": True, "times": times, "errors": errors}


def tput(node: str, n: int, swap: bool = False, timeout: float = 120, size: int = 1) -> dict:
    """swap=True sends message 2 before message 1: the tests use it to see that the
    receivers do notice a message out of order."""
    me = ck.self()
    dest = ("sink", node)
    send, receive = ck.send, ck.receive
    order = range(1, n + 1)
    if swap and n >= 2:
        order = [2, 1, *range(3, n + 1)]
    payload = b"x" * size
    t0 = _now()
    send(dest, (START, me, n))
    for i in order:
        send(dest, (MSG, i, payload))
    try:
        m = receive(timeout=timeout, match=lambda m: type(m) is tuple and len(m) == 3
                    and m[0] == DONE)
    except ck.ReceiveTimeout:
        return {"timeout": _now() - t0}
    return {"ok": True, "ns": _now() - t0, "count": m[1], "errors": m[2]}


def ping_timed(node: str):
    t0 = _now()
    r = ck.Node.ping(node)
    return [str(r), _now() - t0]


def reconnect(node: str, pause_ms: int):
    ck.Node.disconnect(node)
    deadline = time.monotonic() + 1
    while node in ck.Node.list() and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(pause_ms / 1000)
    return ping_timed(node)


_monitoring = False


def watch(node: str):
    global _monitoring
    if not _monitoring:
        ck.net_kernel.monitor_nodes(True)
        _monitoring = True
    if ck.Node.ping(node) != "pong":
        return "pang"
    reply("armed")
    target = Atom(node)
    try:
        ck.receive(timeout=60, match=lambda m: m == (NODEDOWN, target))
    except ck.ReceiveTimeout:
        return "timeout"
    return ["down", time.time_ns()]


# --- PubSub: the same workload as ckbench.erl's ps_* commands --------------------------

PS = "bench"
TP, LAT, ACK = Atom("tp"), Atom("lat"), Atom("ack")
_pub_registered = False


def ps_subscriber(topic: str, pub, ready: threading.Event) -> None:
    ck.PubSub.subscribe(PS, topic)
    ready.set()
    receive, send = ck.receive, ck.send
    got = errors = 0
    while True:
        m = receive()
        if m[0] == TP:
            if m[1] != got + 1:
                errors += 1
            got += 1
            if m[1] == m[2]:
                send(pub, (DONE, got, errors))
                got = errors = 0
        elif m[0] == LAT:
            send(pub, (ACK, m[1]))


def ps_subs(topic: str, k: int, pub_node: str) -> str:
    pub = ("bench_pub", pub_node)
    for _ in range(k):
        ready = threading.Event()
        ck.spawn(ps_subscriber, topic, pub, ready)
        if not ready.wait(10):
            raise RuntimeError("a subscriber did not start")
    return "ok"


def _ps_register() -> None:
    global _pub_registered
    if not _pub_registered:
        ck.register("bench_pub", ck.self())
        _pub_registered = True


def ps_tput(topic: str, n: int, k: int) -> dict:
    _ps_register()
    broadcast, receive = ck.PubSub.broadcast, ck.receive
    t0 = _now()
    for i in range(1, n + 1):
        broadcast(PS, topic, (TP, i, n))
    got = errors = 0
    for _ in range(k):
        try:
            m = receive(timeout=120, match=lambda m: type(m) is tuple and m[0] == DONE)
        except ck.ReceiveTimeout:
            return {"timeout": _now() - t0}
        got += m[1]
        errors += m[2]
    return {"ok": True, "ns": _now() - t0, "count": got, "errors": errors}


def ps_lat(topic: str, m: int, k: int) -> dict:
    _ps_register()
    broadcast, receive = ck.PubSub.broadcast, ck.receive
    times = []
    for i in range(1, m + 1):
        want = (ACK, i)
        t0 = _now()
        broadcast(PS, topic, (LAT, i))
        for _ in range(k):
            try:
                receive(timeout=10, match=lambda x: x == want)
            except ck.ReceiveTimeout:
                return {"lost": i}
        times.append(_now() - t0)
    return {"ok": True, "times": times}


def handle(req: dict):
    cmd = req["cmd"]
    if cmd == "start":
        return str(ck.start(req["name"], cookie=req["cookie"],
                            **req.get("options", {})))
    if cmd == "echo_server":
        _serve("echo", echo_loop)
        return "ok"
    if cmd == "sink_server":
        _serve("sink", sink_loop)
        return "ok"
    if cmd == "ping":
        return str(ck.Node.ping(req["node"]))
    if cmd == "rtt":
        return rtt(req["node"], req["n"])
    if cmd == "tput":
        return tput(req["node"], req["n"], req.get("swap", False),
                    req.get("timeout", 120), req.get("size", 1))
    if cmd == "connect":
        return ping_timed(req["node"])
    if cmd == "reconnect":
        return reconnect(req["node"], req.get("pause_ms", 100))
    if cmd == "watch":
        return watch(req["node"])
    if cmd == "ps_start":
        ck.PubSub.start(PS)
        return "ok"
    if cmd == "ps_members":
        return len(ck.pg.get_members("Elixir.Phoenix.PubSub", Atom("Elixir.bench.Adapter")))
    if cmd == "ps_subs":
        return ps_subs(req["topic"], req["k"], req["pub_node"])
    if cmd == "ps_tput":
        return ps_tput(req["topic"], req["n"], req["k"])
    if cmd == "ps_lat":
        return ps_lat(req["topic"], req["m"], req["k"])
    if cmd == "halt":
        reply("ok")
        os._exit(0)
    raise ValueError(f"unknown command {cmd!r}")


def main() -> None:
    print("@@READY", flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            value = handle(json.loads(line))
        except BaseException as exc:       # report, keep serving
            value = {"error": f"{type(exc).__name__}: {exc}"}
        reply(value)
    os._exit(0)


if __name__ == "__main__":
    main()
