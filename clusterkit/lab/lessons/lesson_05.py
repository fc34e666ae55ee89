"""Lesson 05, "gossip": the exercise check.

The exercise: the multicast group carries two clusters, red (a, b, secret "red") and
blue (c, d, secret "blue"). A new node, f, must join blue, and blue only, by gossip: one
`ck.cluster.start(...)` on f with the gossip strategy and blue's secret. Nobody calls
Node.connect.

    from clusterkit.lab.lessons.lesson_05 import check_exercise
    check_exercise()

It prints one line per fact, in code form, so the English and the Spanish lesson show
the same lines:

    ✔ 'f@127.0.0.1' in Node.list() on c: True
    ✔ 'f@127.0.0.1' in Node.list() on d: True
    ✔ sorted(Node.list()) on f: [Atom('c@127.0.0.1'), Atom('d@127.0.0.1')]
    ✔ 'f@127.0.0.1' in Node.list() on a: False
    4/4
"""
from __future__ import annotations

import time

from ...etf import Atom
from ..exercises import node_value, report

HOST = "127.0.0.1"
NEWCOMER = "f"
BLUE = ("c", "d")
RED = "a"
NEWCOMER_NODE = f"{NEWCOMER}@{HOST}"
SEES_NEWCOMER = f"{NEWCOMER_NODE!r} in Node.list()"
LIST = "sorted(Node.list())"
WANT_LIST = repr(sorted(Atom(f"{m}@{HOST}") for m in BLUE))
# Topologies running on f (a learner may name theirs anything).
RUNNING = "sorted(ck.cluster.status())"
# Red's heartbeats that f has dropped: with blue's secret, red's do not decrypt.
IGNORED = "sum(t.get('ignored', 0) for t in ck.cluster.status().values())"


def _facts(lab) -> list[tuple[bool, str]]:
    checks = []
    for member in BLUE:
        seen = node_value(lab, member, SEES_NEWCOMER) or "None"
        checks.append((seen == "True", f"{SEES_NEWCOMER} on {member}: {seen}"))
    listed = node_value(lab, NEWCOMER, LIST) or "None"
    checks.append((listed == WANT_LIST, f"{LIST} on {NEWCOMER}: {listed}"))
    red = node_value(lab, RED, SEES_NEWCOMER) or "None"
    checks.append((red == "False", f"{SEES_NEWCOMER} on {RED}: {red}"))
    return checks


def check_exercise(timeout: float = 15.0) -> None:
    """Print what is right and what is still missing (✔ / ✘ and a score).

    f's first heartbeat goes out at once, so blue finds f within a moment; and f must
    also have heard (and dropped) red's heartbeats before "not in red" means anything,
    which takes up to libcluster's 5 s interval. So the check looks again for up to
    `timeout` seconds. When f runs no topology there is nothing to wait for.
    """
    from ..magics import shared_lab

    lab = shared_lab()
    deadline = time.monotonic() + timeout
    while True:
        checks = _facts(lab)
        running = node_value(lab, NEWCOMER, RUNNING)
        if running in (None, "[]") or time.monotonic() >= deadline:
            break
        heard = node_value(lab, NEWCOMER, IGNORED) or "0"
        if all(ok for ok, _ in checks) and heard.isdigit() and int(heard) >= 2:
            break
        time.sleep(0.2)
    report(checks)
