"""Messages that wait for a connection being set up.

Erlang lets a process send to a node it is not connected to yet: the message waits in the
pending connection and the sender goes on. So do we. Per node, frames wait in the order they
were sent until the connection is up (they then go out before anything sent later) or fails
(they are dropped, with one log line that says how many).

Bound: `limit` bytes per node (the connection's busy limit). Past it, a user thread waits
until the connect is resolved, as it would on a busy connection; a frame from the loop
thread, which must never wait, is dropped with a log line instead.

The lock is a leaf: under it there are only dict and deque operations, never a call that can
come back into our code, so no thread can wait for it while holding it.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from ..etf import Atom


@dataclass
class _Waiting:
    frames: deque = field(default_factory=deque)
    size: int = 0
    resolved: threading.Event = field(default_factory=threading.Event)


class WaitingSends:
    def __init__(self, limit: int):
        self.limit = limit
        self._lock = threading.Lock()
        self._by_node: dict[Atom, _Waiting] = {}

    def __contains__(self, node: Atom) -> bool:
        return node in self._by_node        # a racy read, good enough for a fast path

    def add(self, node: Atom, frame: bytes, is_up) -> tuple[str, threading.Event | None]:
        """Queue `frame` for `node` unless the connection is up with nothing waiting.

        `is_up(node)` says whether the connection is up. Returns ("direct", None) when the
        caller should write it itself, ("queued", None),
        ("first", None) when the caller must start the connect, or ("full", event) when
        the queue is past its bound and the frame was not queued: wait for the event (a
        user thread) and try again, or drop it (the loop)."""
        with self._lock:
            waiting = self._by_node.get(node)
            if waiting is None:
                if is_up(node):
                    return "direct", None
                waiting = self._by_node[node] = _Waiting()
                outcome = "first"
            else:
                outcome = "queued"
                if waiting.size + len(frame) > self.limit and waiting.frames:
                    return "full", waiting.resolved
            waiting.frames.append(frame)
            waiting.size += len(frame)
            return outcome, None

    def take(self, node: Atom) -> list[bytes]:
        """The frames waiting for `node`, oldest first. When none are left the entry goes,
        so later sends write directly; until then they keep queueing behind these."""
        with self._lock:
            waiting = self._by_node.get(node)
            if waiting is None:
                return []
            if not waiting.frames:
                del self._by_node[node]
                waiting.resolved.set()
                return []
            frames = list(waiting.frames)
            waiting.frames.clear()
            waiting.size = 0
            return frames

    def drop(self, node: Atom) -> int:
        """Forget what waits for `node` (the connect failed); how many frames that was."""
        with self._lock:
            waiting = self._by_node.pop(node, None)
        if waiting is None:
            return 0
        waiting.resolved.set()
        return len(waiting.frames)

    def drop_all(self) -> None:
        with self._lock:
            entries, self._by_node = list(self._by_node.values()), {}
        for waiting in entries:
            waiting.resolved.set()
