"""Lesson 04, "watching the cluster": the exercise check.

The exercise: on node d, a GenServer registered as "Watcher" keeps the set of visible
nodes that are up (monitor_nodes in init, add on nodeup, remove on nodedown) and answers
the call "nodes" with the sorted list.

    from clusterkit.lab.lessons.lesson_04 import check_exercise
    check_exercise()

The check prints one line per fact, in code form, so the English and the Spanish lesson
show the same lines:

    ✔ ck.whereis('Watcher') on d: #PID<d@127.0.0.1.6.0>
    ✔ GenServer.call(('Watcher', 'd@127.0.0.1'), 'nodes') on a: [Atom('a@127.0.0.1')]
    ✔ GenServer.call(('Watcher', 'd@127.0.0.1'), 'nodes') on h after Node.disconnect('d@127.0.0.1') on a: []
    3/3

The call from a connects a to d, and d's nodeup for a is delivered before anything a
sends over the new connection, so the first answer does not depend on timing. After a
disconnects, d learns it a moment later: the third fact is polled, with a deadline.
"""
from __future__ import annotations

import time

from ..exercises import report

SERVER = "Watcher"
HOME = "d"
HOME_NODE = "d@127.0.0.1"
CALL = f"GenServer.call(({SERVER!r}, {HOME_NODE!r}), 'nodes')"
DISCONNECT = f"Node.disconnect({HOME_NODE!r})"
WANT_FROM_A = "[Atom('a@127.0.0.1')]"
WANT_AFTER = "[]"


def _value(lab, node: str, code: str) -> str:
    """The repr of code's value on node; the exception's class name when it raises."""
    from ..core import LabError
    try:
        result = lab.run(node, f"print(repr(({code})))", timeout=30, keep_backlog=True)
    except LabError:
        return "None"
    if not result.ok:
        return (result.error or "error").split(":", 1)[0]
    return "".join(o.text for o in result.outputs if o.kind == "stdout").strip() or "None"


def check_exercise(timeout: float = 5.0) -> None:
    """Print what is right and what is still missing (✔ / ✘ and a score)."""
    from ..magics import shared_lab

    lab = shared_lab()
    where = _value(lab, HOME, f"ck.whereis({SERVER!r})")
    registered = where not in ("None", "NameError")
    checks = [(registered, f"ck.whereis({SERVER!r}) on {HOME}: {where}")]
    if not registered:
        # Calls would only exit with noproc (and log on d): do not make them.
        checks.append((False, f"{CALL} on a: noproc"))
        checks.append((False, f"{CALL} on h after {DISCONNECT} on a: noproc"))
        report(checks)
        return
    first = _value(lab, "a", CALL)
    checks.append((first == WANT_FROM_A, f"{CALL} on a: {first}"))
    _value(lab, "a", DISCONNECT)
    deadline = time.monotonic() + timeout
    while True:
        after = _value(lab, "h", CALL)
        if after == WANT_AFTER or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    checks.append((after == WANT_AFTER, f"{CALL} on h after {DISCONNECT} on a: {after}"))
    report(checks)
