"""Processes and mailboxes.

A clusterkit "process" is a pid with a mailbox. Python threads run them: the thread
that calls `ck.self()` gets its own process (a cell's shell process in Jupyter), and
each GenServer runs on a thread of its own. The runtime's own services (net_kernel,
rex) are processes whose messages are handled on the runtime loop instead.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable

from ..etf import Atom, Pid, Reference


class ReceiveTimeout(TimeoutError):
    """`receive` found no (matching) message before its timeout."""


class Mailbox:
    """A thread-safe queue with Erlang's selective receive."""

    def __init__(self):
        self._items: deque = deque()
        self._cond = threading.Condition()

    def put(self, message: Any) -> None:
        with self._cond:
            self._items.append(message)
            self._cond.notify()         # only the owning thread ever waits on a mailbox

    def put_many(self, messages: list) -> None:
        with self._cond:
            self._items.extend(messages)
            self._cond.notify()

    def take(self, timeout: float | None = None,
             match: Callable[[Any], bool] | None = None) -> tuple[bool, Any]:
        """Remove and return the first (matching) message: (True, message) or (False, None)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        scanned = 0
        while True:
            with self._cond:
                items = self._items
                if match is None:
                    if items:
                        return True, items.popleft()
                    fresh = ()
                else:
                    # Only look at messages not yet scanned, like the BEAM's save queue.
                    fresh = [items[i] for i in range(scanned, len(items))]
                if not fresh:
                    if deadline is None:
                        self._cond.wait()
                    else:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return False, None
                        self._cond.wait(left)
                    continue
            # The user's match runs without the lock, so a slow one never holds up the
            # runtime thread delivering messages. Only this thread takes from the
            # mailbox, so the items it scanned stay where they are.
            for offset, message in enumerate(fresh):
                if match(message):
                    with self._cond:
                        del self._items[scanned + offset]
                    return True, message
            scanned += len(fresh)

    def drain(self) -> list:
        with self._cond:
            items = list(self._items)
            self._items.clear()
            return items

    def __len__(self) -> int:
        return len(self._items)


class Process:
    """A local process: pid, mailbox, links and the monitors that watch it."""

    def __init__(self, pid: Pid, handler: Callable[[Any], None] | None = None,
                 label: str = ""):
        self.pid = pid
        self.mailbox = Mailbox()
        self.handler = handler          # runs on the runtime loop instead of a mailbox
        self.label = label
        self.registered_name: Atom | None = None
        self.links: set[Pid] = set()
        # ref -> (watcher pid, the object the watcher named: our pid or our name)
        self.monitored_by: dict[Reference, tuple[Pid, Any]] = {}
        self.alive = True

    def deliver(self, message: Any) -> None:
        if not self.alive:
            return
        if self.handler is not None:
            self.handler(message)
        else:
            self.mailbox.put(message)

    def __repr__(self) -> str:
        return f"<Process {self.pid!r} {self.label}>"
