"""Lesson 08, "The console": the console as the lesson shows it, the Convoy seed's
worker, waits with a deadline, and the exercise check.

    from clusterkit.lab.lessons.lesson_08 import show_console, wait_for_line, check_exercise

`show_console()` displays the console widget of the shared lab in the lesson's language
(the folder the notebook runs in: notebooks/en or notebooks/es, so both lessons run the
same code) and returns its `Console`, whose methods the checked cells call. Its display
output's plain text names only the nodes, so it is the same in both languages and runs.

This module is also imported inside node kernels (`start_worker()` from a shell), so it
imports no widget code at module level.

The exercise: node c joins by hand from the console and runs a ConvoyWorker that a's
shell pings:

    ✔ console.status('c'): 'running'
    ✔ 'c@127.0.0.1' in Node.list() on a@127.0.0.1: True
    ✔ ck.whereis('ConvoyWorker') on c@127.0.0.1: True
    ✔ 'Received ping on node c@127.0.0.1' in console.transcript('c'): True
    4/4
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from ...runtime.genserver import GenServer
from ..exercises import node_value, report

DNS_PORT = 8054     # lesson 06 uses 8053
EPMD_PORT = 4371    # lesson 06 uses 4370
NAMESERVER = ("127.0.0.1", DNS_PORT)

_console = None


class ConvoyWorker(GenServer):
    """The Convoy seed's worker: `send({ConvoyWorker, node}, :ping)` prints one line."""

    def handle_info(self, message, state):
        if message == "ping":
            from clusterkit import Node
            print(f"Received ping on node {Node.self()}")
        return ("noreply", state)


def start_worker() -> bool:
    """Start this node's ConvoyWorker (inside a node kernel, say from its shell)."""
    import clusterkit as ck
    if ck.whereis("ConvoyWorker") is None:
        GenServer.start(ConvoyWorker, None, name="ConvoyWorker")
    return ck.whereis("ConvoyWorker") is not None


def _language() -> str:
    return "es" if Path.cwd().name == "es" else "en"


def show_console(nodes=("a", "b", "c")):
    """Display the shared lab's console and return its Console."""
    global _console
    from IPython.display import display

    from ..console import Console
    from ..magics import shared_lab
    if _console is not None:
        _console.close()
    _console = Console(shared_lab(), lang=_language(), nodes=nodes)
    bundle = _console.widget._repr_mimebundle_()
    bundle["text/plain"] = "console: " + ", ".join(_console.names)
    display(bundle, raw=True)
    return _console


def wait_for_line(console, name: str, text: str, timeout: float = 15.0) -> bool:
    """Wait until a line containing text shows in the node's shell."""
    deadline = time.monotonic() + timeout
    while text not in console.transcript(name):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def wait_for_edges(console, count: int, prefix: str = "", timeout: float = 20.0) -> list:
    """Refresh the drawing until it has `count` connections between nodes whose names
    start with prefix; return those connections, sorted."""
    deadline = time.monotonic() + timeout
    while True:
        topology = console.refresh()
        edges = sorted((a, b) for a, b, _kind in topology["edges"]
                       if a.startswith(prefix) and b.startswith(prefix))
        if len(edges) == count or time.monotonic() >= deadline:
            return edges
        time.sleep(0.2)


def listening(hosts=("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")) -> dict:
    """Where the lab listens: for the lesson's EPMD, its DNS server and each node that
    EPMD knows on these hosts, the sorted local addresses of its listening sockets
    (TCP and UDP, from `ss`)."""
    from ...epmd.client import names_sync
    ports = {"epmd": EPMD_PORT, "dns": DNS_PORT}
    for host in hosts:
        for name, port in names_sync(host, EPMD_PORT).nodes:
            ports[f"{name}@{host}"] = port
    try:
        lines = subprocess.run(["ss", "-Hltun"], capture_output=True, text=True,
                               check=True).stdout.splitlines()
    except FileNotFoundError:
        raise RuntimeError("listening() needs ss: install Debian's iproute2") from None
    found: dict = {}
    for line in lines:
        address, _, port = line.split()[4].rpartition(":")
        for who, wanted in ports.items():
            if port == str(wanted):
                found.setdefault(who, set()).add(address)
    return {who: sorted(found.get(who, ())) for who in sorted(ports)}


def _facts(lab, console) -> list[tuple[bool, str]]:
    a, c = console.key("a"), console.key("c")
    status = console.status("c")
    checks = [(status == "running", f"console.status('c'): {status!r}")]
    peers = node_value(lab, a, "sorted(str(n) for n in Node.list())")
    connected = peers is not None and repr(c) in peers
    checks.append((connected, f"{c!r} in Node.list() on {a}: {connected}"))
    worker = node_value(lab, c, "ck.whereis('ConvoyWorker') is not None") == "True"
    checks.append((worker, f"ck.whereis('ConvoyWorker') on {c}: {worker}"))
    line = f"Received ping on node {c}"
    seen = line in console.transcript("c")
    checks.append((seen, f"{line!r} in console.transcript('c'): {seen}"))
    return checks


def check_exercise(timeout: float = 10.0) -> None:
    """Print what is right and what is still missing. The ping's line reaches c's shell
    a moment after the send, so the check looks again for a while."""
    from ..magics import shared_lab
    lab = shared_lab()
    if _console is None:
        report([(False, "show_console() was not run")])
        return
    deadline = time.monotonic() + timeout
    while True:
        checks = _facts(lab, _console)
        if all(ok for ok, _ in checks) or not checks[0][0] or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    report(checks)
