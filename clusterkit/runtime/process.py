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
from .errors import ProcessExit, ReceiveTimeout

__all__ = ["Mailbox", "Process", "ProcessExit", "ReceiveTimeout"]

# Refs of calls that gave up, kept per mailbox so their late replies are dropped. Most
# never get a reply, so the oldest are forgotten past this many.
MAX_ABANDONED = 1024


class Mailbox:
    """A thread-safe queue with Erlang's selective receive.

    Unbounded, as an Erlang mailbox is: a message sent is never dropped for lack of room.
    What bounds memory is upstream: a sender to another node blocks past the
    connection's busy limit (channel.py), and a process that never reads is the
    program's bug, visible in `len(mailbox)`.
    """

    def __init__(self):
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._abandoned: dict = {}
        self._exit: Any = None          # set once an exit signal ended the process

    def _late(self, message: Any) -> bool:
        if type(message) is tuple and len(message) == 2 and message[0] in self._abandoned:
            del self._abandoned[message[0]]
            return True
        return False

    def put(self, message: Any) -> None:
        with self._cond:
            if self._abandoned and self._late(message):
                return
            self._items.append(message)
            self._cond.notify()         # only the owning thread ever waits on a mailbox

    def put_many(self, messages: list) -> None:
        with self._cond:
            if self._abandoned:
                messages = [m for m in messages if not self._late(m)]
            self._items.extend(messages)
            self._cond.notify()

    def abandon(self, ref: Any) -> None:
        """A call with this ref gave up: its reply, if it ever comes, is dropped
        (as an Erlang alias drops it once deactivated)."""
        with self._cond:
            self._abandoned[ref] = None
            if len(self._abandoned) > MAX_ABANDONED:
                del self._abandoned[next(iter(self._abandoned))]

    def close(self, reason: Any) -> None:
        """The process was ended from outside: wake its thread, whose receive raises."""
        with self._cond:
            self._exit = (reason,)
            self._cond.notify_all()

    def take(self, timeout: float | None = None,
             match: Callable[[Any], bool] | None = None) -> tuple[bool, Any]:
        """Remove and return the first (matching) message: (True, message) or (False, None)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        scanned = 0
        while True:
            with self._cond:
                if self._exit is not None:
                    raise ProcessExit(self._exit[0])
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
    """A local process: pid, mailbox, links and the monitors that watch it.

    Three kinds, by who runs them:
    - a thread's own process (a cell's shell process, a spawned function): messages go
      to the mailbox; it ends when its thread ends. `trap_exit` says what an exit signal
      does: a shell process traps exits and gets {'EXIT', From, Reason} messages, a
      spawned one (trap_exit False) ends, like an Erlang process;
    - a GenServer: `on_exit_signal` hands signals to its own loop, and `on_node_stop`
      asks it to terminate when the node stops;
    - a service (net_kernel, rex, global): `handler` runs each message on the loop.
    """

    def __init__(self, pid: Pid, handler: Callable[[Any], None] | None = None,
                 label: str = "", *, trap_exit: bool = True,
                 on_exit_signal: Callable[[Pid, Any, bool], None] | None = None,
                 on_node_stop: Callable[[], None] | None = None):
        self.pid = pid
        self.mailbox = Mailbox()
        self.handler = handler          # runs on the runtime loop instead of a mailbox
        self.label = label
        self.trap_exit = trap_exit
        self.on_exit_signal = on_exit_signal
        self.on_node_stop = on_node_stop
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
