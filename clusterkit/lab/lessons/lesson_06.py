"""Lesson 06, "DNS discovery": the lesson's DNS server, and the exercise check.

    from clusterkit.lab.lessons.lesson_06 import save_zone, start_dns, check_exercise

`start_dns` starts `clusterkit dns` as a detached daemon (the way the lab starts EPMD),
on 127.0.0.1 port 8053, and sets CLUSTERKIT_RESOLVER so that every node kernel started
after it resolves host names through it. The daemon stops with `stop_dns()` or when
the notebook's kernel exits.

The exercise: app@127.0.0.4 left the zone and was disconnected. Bring it back by
putting its A record back under app.railway.internal; the DNSPoll topologies still
running on the other two nodes do the rest:

    ✔ '127.0.0.4' in lookup(NAMESERVER, 'app.railway.internal'): True
    ✔ app nodes in Node.list() on app@127.0.0.2: ['app@127.0.0.3', 'app@127.0.0.4']
    ✔ app nodes in Node.list() on app@127.0.0.3: ['app@127.0.0.2', 'app@127.0.0.4']
    3/3
"""
from __future__ import annotations

import atexit
import os
import tempfile
import time
from pathlib import Path

from ...dns import lookup, spawn
from ...dns.client import ENV, LookupFailed
from ..exercises import node_value, report

PORT = 8053
NAMESERVER = ("127.0.0.1", PORT)
ZONE = "railway.internal"
QUERY = "app.railway.internal"
RETURNING = "127.0.0.4"
MEMBERS = ("app@127.0.0.2", "app@127.0.0.3")
APP_NODES = "sorted(str(n) for n in Node.list() if n.startswith('app@'))"

_dir: str | None = None
_server = None


def save_zone(origin: str, text: str) -> Path:
    """Write a zone file into this lesson's own temporary directory; return its path."""
    global _dir
    if _dir is None:
        _dir = tempfile.mkdtemp(prefix="clusterkit-lesson06-")
    path = Path(_dir) / f"{origin}.zone"
    path.write_text(text)
    return path


def start_dns(*zone_files, port: int = PORT) -> None:
    """Serve the zone files on 127.0.0.1:port; the node kernels started next use it."""
    global _server
    stop_dns()
    _server = spawn(zone_files, port, log_file=Path(_dir or tempfile.gettempdir()) / "dns.log")
    atexit.register(stop_dns)
    os.environ[ENV] = f"127.0.0.1:{port}"
    origins = ", ".join(Path(f).name[: -len(".zone")] for f in zone_files)
    print(f"clusterkit dns: 127.0.0.1 port {port} serves {origins}")


def stop_dns() -> None:
    global _server
    if _server is not None and _server.poll() is None:
        _server.terminate()
        _server.wait(10)
    _server = None
    os.environ.pop(ENV, None)


def _facts(lab) -> list[tuple[bool, str]]:
    try:
        answer = lookup(NAMESERVER, QUERY, "A")
    except (LookupFailed, OSError):
        answer = []
    has = RETURNING in answer
    checks = [(has, f"{RETURNING!r} in lookup(NAMESERVER, {QUERY!r}): {has}")]
    for member in MEMBERS:
        want = sorted(m for m in (*MEMBERS, f"app@{RETURNING}") if m != member)
        got = node_value(lab, member, APP_NODES) or "None"
        checks.append((got == repr(want), f"app nodes in Node.list() on {member}: {got}"))
    return checks


def check_exercise(timeout: float = 10.0) -> None:
    """Print what is right and what is still missing. When the record is back, DNSPoll
    needs up to one polling interval to connect, so the check looks again for a while."""
    from ..magics import shared_lab
    lab = shared_lab()
    deadline = time.monotonic() + timeout
    while True:
        checks = _facts(lab)
        if all(ok for ok, _ in checks) or not checks[0][0] or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    report(checks)
