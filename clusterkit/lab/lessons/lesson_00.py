"""Lesson 00, "a node is born": the exercise check.

The exercise: turn the lesson's own kernel into the node `ada@127.0.0.1` with the
cookie `my_cookie`. The kernel is already the node `a@127.0.0.1`, and a process is one
node at a time, so the answer is `ck.stop()` and then `ck.start(...)`.

    from clusterkit.lab.lessons.lesson_00 import check_exercise
    check_exercise()

It prints one line per fact, in code form, so the English and the Spanish lesson show
the same lines:

    ✔ Node.alive(): True
    ✘ Node.self(): 'a@127.0.0.1'
    ...
"""
from __future__ import annotations

import time

from ..exercises import report

WANT_NODE = "ada@127.0.0.1"
WANT_COOKIE = "my_cookie"
OLD_NAME = "a"


def _epmd_names() -> list[str] | None:
    """The names (the part before '@') that this machine's EPMD lists, or None."""
    from ...epmd import EpmdError, names_sync
    try:
        return sorted(name for name, _port in names_sync().nodes)
    except (EpmdError, OSError):
        return None


def _settled_epmd_names(me: str, timeout: float = 2.0) -> list[str] | None:
    """EPMD drops a name when the node's connection to it closes, which it learns a
    moment after `ck.stop()`: when this kernel is no longer `a`, ask again for a little
    while before saying that 'a' is still listed."""
    deadline = time.monotonic() + timeout
    names = _epmd_names()
    still_a = me.split("@")[0] == OLD_NAME
    while (names is not None and OLD_NAME in names and not still_a
           and time.monotonic() < deadline):
        time.sleep(0.1)
        names = _epmd_names()
    return names


def check_exercise() -> None:
    """Print what is right and what is still missing (✔ / ✘ and a score)."""
    from ...api import Node

    alive = Node.alive()
    me = str(Node.self())
    cookie = str(Node.get_cookie())
    names = _settled_epmd_names(me)
    listed = names is not None and WANT_NODE.split("@")[0] in names
    old_gone = names is not None and OLD_NAME not in names
    report([
        (alive, f"Node.alive(): {alive}"),
        (me == WANT_NODE, f"Node.self(): {me!r}"),
        (cookie == WANT_COOKIE, f"Node.get_cookie(): {cookie!r}"),
        (listed, f"'ada' in epmd -names: {listed}"),
        (old_gone, f"'a' not in epmd -names: {old_gone}"),
    ])
