"""A TCP socket that the node's loop reads and that any thread may write.

Why not an asyncio transport: a transport may only be written from the loop thread, so
every send from a user thread would cost a hand-off to the loop and back (two thread
wake-ups, measured at about half of a round trip: 446 -> 209 us). And writing around a
transport means reaching into its private socket. Here the socket is our own, driven with
the loop's public `add_reader`/`add_writer`.

One writer at a time, deadlock-free by construction:
- `_cond` is a leaf lock. While it is held, the only calls made are `socket.send`, list
  operations and `notify_all`: nothing that can call back into clusterkit code, and no
  asyncio call. So no thread can ever wait for it while holding it.
- A writer that finds nothing queued sends straight to the socket (the fast path when
  the socket is idle). Otherwise, or for what the kernel did not take, the bytes join the
  queue, and the loop is woken once per burst (`_armed`) to write them when the socket is
  writable. Bytes therefore leave in the order their writers took the lock.
- Backpressure: past `busy_limit` queued bytes (Erlang's dist_buf_busy_limit), a writer
  that asked to `block` waits until the queue drains below it or the channel closes. The
  loop never blocks: its writes always queue.
- Closing happens under the lock, so a send never runs on a closed (or reused) descriptor.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import socket
import threading
import time
from typing import Callable

log = logging.getLogger("clusterkit")

READ_SIZE = 256 * 1024
# One write from the loop joins queued chunks up to this size: one syscall per burst.
JOIN_LIMIT = 1024 * 1024
DEFAULT_BUSY_LIMIT = 1024 * 1024     # Erlang's dist_buf_busy_limit default: 1 MiB
# A write that comes this soon after the last direct one is part of a burst: it queues,
# and the loop writes the whole burst with one system call instead of one per message.
BURST_GAP = 20e-6
# A burst that has queued this much is written by its own sender.
SELF_FLUSH = 4 * 1024
# How soon the loop looks again at a queue that writers are still filling.
POLL_INTERVAL = 0.0002


def configure(sock: socket.socket) -> None:
    sock.setblocking(False)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        # Distribution messages are small and latency-bound: no Nagle (as Erlang's dist).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Channel:
    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, *,
                 on_data: Callable[[bytes], None], on_closed: Callable[[Exception | None], None],
                 loop_thread: int, busy_limit: int = DEFAULT_BUSY_LIMIT):
        configure(sock)
        self._loop_thread = loop_thread     # the loop's thread ident
        self.loop = loop
        self.sock = sock
        self.busy_limit = busy_limit
        self._on_data = on_data
        self._on_closed = on_closed
        self._cond = threading.Condition(threading.Lock())
        self._queue: collections.deque = collections.deque()
        self.pending = 0            # bytes queued, not yet taken by the kernel
        self.writes = 0             # write() calls accepted: the tick rule reads it
        self.closed = False
        self._armed = False         # a loop wake-up to write the queue is on its way
        self._writer_on = False     # add_writer is registered (loop thread only)
        self._reading = False
        self._broken: OSError | None = None
        self._last_direct = 0.0
        self._polled_writes = 0
        self._poll: asyncio.TimerHandle | None = None
        self.peername = _peername(sock)

    # --- reading (loop thread) --------------------------------------------------------
    def start(self) -> None:
        self.resume_reading()

    def pause_reading(self) -> None:
        if self._reading and not self.closed:
            self.loop.remove_reader(self.sock)
            self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and not self.closed:
            self.loop.add_reader(self.sock, self._readable)
            self._reading = True

    def _readable(self) -> None:
        try:
            data = self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close(exc)
            return
        if not data:
            self.close(None)
            return
        self._on_data(data)

    # --- writing (any thread) ---------------------------------------------------------
    def write(self, data: bytes, block: bool = False) -> bool:
        """Send `data` after everything written before it. With block=True (user threads
        only), first wait while more than busy_limit bytes are queued. False if closed."""
        wake = False
        with self._cond:
            if block:
                while self.pending > self.busy_limit and not self.closed:
                    self._cond.wait()
            if self.closed:
                return False
            self.writes += 1
            now = time.perf_counter()
            if not self._queue and now - self._last_direct > BURST_GAP:
                self._last_direct = now
                try:
                    sent = self.sock.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError as exc:
                    # Broken: the loop closes it (closing needs the loop's selector).
                    self._broken = exc
                    wake = not self._armed
                    self._armed = True
                    sent = len(data)
                if sent == len(data) and not wake:
                    return True
                if sent == len(data):
                    data = b""
                elif sent:
                    data = memoryview(data)[sent:]
            if data:
                self._queue.append(data)
                self.pending += len(data)
                if not self._armed:
                    self._armed = wake = True
                elif self.pending >= SELF_FLUSH and not self._writer_on:
                    # A long burst: write it from here rather than wait for the loop
                    # (which needs this thread's GIL to run). The loop's wake-up, still
                    # on its way, writes whatever the kernel did not take.
                    self._drain_locked()
        if wake:
            if threading.get_ident() == self._loop_thread:
                self._arm()
            else:
                try:
                    self.loop.call_soon_threadsafe(self._arm)
                except RuntimeError:        # the loop is closed: the node has stopped
                    return False
        return True

    def _arm(self) -> None:
        """Loop thread: write what is queued now, and watch for writability if needed."""
        if self.closed:
            return
        if self._broken is not None:
            self.close(self._broken)
            return
        self._writable()

    def _writable(self) -> None:
        with self._cond:
            drained, error = self._drain_locked()
            # While writers keep coming, stay armed and look again shortly instead of
            # being woken (a self-pipe write and a GIL hand-off) for every burst.
            active = self.writes != self._polled_writes
            self._polled_writes = self.writes
            if drained and not active:
                self._armed = False
        if error is not None:
            self.close(error)
            return
        if drained and active and self._poll is None:
            self._poll = self.loop.call_later(POLL_INTERVAL, self._polled)
        if drained and self._writer_on:
            self.loop.remove_writer(self.sock)
            self._writer_on = False
        elif not drained and not self._writer_on:
            self.loop.add_writer(self.sock, self._writable)
            self._writer_on = True

    def _polled(self) -> None:
        self._poll = None
        if not self.closed:
            self._writable()

    def _drain_locked(self) -> tuple[bool, OSError | None]:
        """Send what is queued, as far as the kernel takes it (caller holds _cond).
        Returns (whether the queue is now empty, the error that broke the socket)."""
        queue = self._queue
        error = None
        while queue:
            chunk = queue.popleft()
            if queue and len(chunk) < JOIN_LIMIT:
                parts, size = [chunk], len(chunk)
                while queue and size + len(queue[0]) <= JOIN_LIMIT:
                    nxt = queue.popleft()
                    parts.append(nxt)
                    size += len(nxt)
                chunk = b"".join(parts)
            try:
                sent = self.sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                error = exc
                queue.appendleft(chunk)
                break
            self.pending -= sent
            if sent < len(chunk):
                queue.appendleft(memoryview(chunk)[sent:])
                break
        if self.pending <= self.busy_limit:
            self._cond.notify_all()
        return not queue, error

    # --- closing (loop thread) --------------------------------------------------------
    def close(self, exc: Exception | None = None) -> None:
        """Close now (queued bytes are dropped, as Erlang drops them on disconnect);
        on_closed(exc) runs soon after, once."""
        if self.closed:
            return
        if self._reading:
            self.loop.remove_reader(self.sock)
            self._reading = False
        if self._writer_on:
            self.loop.remove_writer(self.sock)
            self._writer_on = False
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None
        with self._cond:
            self.closed = True
            self._queue.clear()
            self.pending = 0
            self._cond.notify_all()
            try:
                self.sock.close()
            except OSError:
                pass
        self.loop.call_soon(self._on_closed, exc)


def _peername(sock: socket.socket) -> str:
    try:
        host, port = sock.getpeername()[:2]
        return f"{host}:{port}"
    except (OSError, ValueError):
        return "an unknown peer"
