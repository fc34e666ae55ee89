"""Which node a caller means: the thread's own node, else the process's default node.

One node per Python process is the public model (like one node per BEAM), and
`ck.start` makes it the default. Tests may run two nodes in one process: a thread that
runs a process of a node (a GenServer, a spawned function) or that entered
`node.as_current()` means that node.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .errors import NotAlive

if TYPE_CHECKING:
    from .node import LocalNode

_default: "LocalNode | None" = None
_thread = threading.local()
# Whether any thread was ever bound: until then (one node per process, the usual case)
# node() skips the thread-local look-up, which costs about 8% of a message's receive.
_any_bound = False


def set_default(node: "LocalNode | None") -> None:
    global _default
    _default = node


def default() -> "LocalNode | None":
    return _default


def bind(node: "LocalNode | None") -> None:
    """The calling thread means `node` (None: the default again). Binding the default
    node itself changes nothing, so it is skipped."""
    global _any_bound
    if node is None or node is _default:
        if _any_bound:
            _thread.node = None
        return
    _any_bound = True
    _thread.node = node


def bound() -> "LocalNode | None":
    return getattr(_thread, "node", None)


def node() -> "LocalNode":
    """The node the calling thread means; NotAlive when there is none (or it stopped)."""
    n = getattr(_thread, "node", None) if _any_bound else None
    if n is None or not n.alive:
        n = _default
    if n is None or not n.alive:
        raise NotAlive("this Python process is not a node yet: call "
                       "ck.start('a@127.0.0.1', cookie='...') first")
    return n
