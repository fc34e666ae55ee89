"""One distribution connection, sans-I/O: handshake, then framing, control decoding and ticks.

In the style of h11's `Connection` and websockets' protocol core: bytes and a clock go in,
events and bytes come out. No sockets, no threads, no asyncio. The runtime feeds what it
reads to `receive_data`, sends what `data_to_send()` returns, and calls `on_timer(now, ...)`
when `next_timer()` comes due. That makes the rules below testable with a fake clock.

    conn = DistConnection(Role.INITIATOR, "a@127.0.0.1", creation, peer_node="b@127.0.0.1",
                          cookie="secret", now=clock())
    sock.send(conn.data_to_send())
    for event in conn.receive_data(sock.recv(65536)): ...

Rules that live here (and nowhere else):
- set-up: a handshake not finished within `setup_time` fails (`SetupTimeout`);
- ticks, as dist_util's con_loop: every net_ticktime/4, send a tick if nothing was written
  (and nothing is pending) since the last one, and give up (`PeerSilent`) after four
  intervals in a row with nothing read. A hidden node also ticks while it hears nothing;
- simultaneous connects: `keeps_own_attempt` decides which of two crossed attempts lives.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from . import control
from . import handshake as hs
from .flags import EXIT_PAYLOAD, PUBLISHED
from .framing import MAX_FRAME, TICK_FRAME, FrameDecoder, FramingError, frame

Role = hs.Role

# Four silent tick intervals drop the peer: Erlang's rule.
SILENT_TICKS = 4


def keeps_own_attempt(this_node: str, peer_node: str) -> bool:
    """Two nodes dial each other at once: the one with the greater name keeps its own
    attempt and answers the other's with `nok` (net_kernel compares the node atoms)."""
    return this_node > peer_node


class Phase(enum.Enum):
    HANDSHAKE = "handshake"
    UP = "up"
    CLOSED = "closed"


@dataclass(frozen=True)
class Up:
    """The handshake completed: the connection now carries distribution messages."""
    node: str
    flags: int
    creation: int

    @property
    def hidden(self) -> bool:
        return not self.flags & PUBLISHED


@dataclass(frozen=True)
class SetupTimeout:
    """The handshake did not finish within the set-up time."""


@dataclass(frozen=True)
class PeerSilent:
    """Nothing was read for four tick intervals: the peer is not responding."""


@dataclass(frozen=True)
class ProtocolError:
    """The peer sent bytes that break the protocol after the handshake."""
    reason: str


class DistConnection:
    """Both phases of one connection. Not thread-safe: one owner (the runtime's loop)."""

    def __init__(self, role: Role, this_node: str, creation: int, *, now: float,
                 hidden: bool = False, peer_node: str | None = None,
                 cookie: str | None = None, net_ticktime: float = 60,
                 setup_time: float = 7.0, max_frame: int = MAX_FRAME,
                 challenge: int | None = None):
        self.role = role
        self.handshake = hs.Handshake(role, this_node, creation, hidden=hidden,
                                      peer_node=peer_node, cookie=cookie, challenge=challenge)
        self.phase = Phase.HANDSHAKE
        self.peer_node = peer_node
        self.flags = 0
        self.peer_creation = 0
        self.tick_interval = net_ticktime / 4
        self._max_frame = max_frame
        self._frames: FrameDecoder | None = None
        self._memo = control.ControlMemo()
        self._out = bytearray(self.handshake.data_to_send())
        self._deadline = now + setup_time       # set-up deadline, then the next tick
        # tick state, as in dist_util's #tick{}: counters seen at the last tick
        self.reads = 0
        self._seen_reads = 0
        self._seen_writes = 0
        self._silent = 0

    # --- state ----------------------------------------------------------------------
    @property
    def up(self) -> bool:
        return self.phase is Phase.UP

    @property
    def hidden(self) -> bool:
        return not self.flags & PUBLISHED

    @property
    def payload_exits(self) -> bool:
        return bool(self.flags & EXIT_PAYLOAD)

    # --- bytes in ---------------------------------------------------------------------
    def receive_data(self, data: bytes, now: float) -> list:
        """Feed bytes read from the peer. Returns handshake events (see handshake.py),
        then `Up`, then control events (see control.py), or a `ProtocolError`."""
        if self.phase is Phase.CLOSED or not data:
            return []
        self.reads += 1
        if self.phase is Phase.UP:
            return self._receive_frames(data)
        try:
            events = self.handshake.receive_data(data)
        except hs.HandshakeError as exc:
            return self._fail(hs.Failed(f"handshake error: {exc}", protocol_error=True))
        out: list = []
        for event in events:
            if isinstance(event, hs.NameReceived):
                self.peer_node = event.node
            if isinstance(event, hs.Failed):
                out.extend(self._fail(event))
                return out
            if isinstance(event, hs.Completed):
                self._take_handshake_output()
                out.append(self._complete(event, now))
                if event.leftover:
                    out.extend(self._receive_frames(event.leftover))
                return out
            out.append(event)
        self._take_handshake_output()
        return out

    def _receive_frames(self, data: bytes) -> list:
        try:
            bodies = self._frames.receive_data(data)
        except FramingError as exc:
            return self._protocol_error(str(exc))
        events = []
        memo = self._memo
        decode = control.decode
        for body in bodies:
            if not body:
                continue            # a tick: reading it is all it is for
            try:
                # A compressed term inflates to no more than a frame may hold.
                events.append(decode(body, memo, max_inflated=self._max_frame))
            except control.ControlError as exc:
                events.extend(self._protocol_error(str(exc)))
                break
        return events

    def _complete(self, event: hs.Completed, now: float) -> Up:
        self.phase = Phase.UP
        self.peer_node = event.node
        self.flags = event.flags
        self.peer_creation = event.creation
        self._frames = FrameDecoder(self._max_frame)
        self._deadline = now + self.tick_interval
        self._seen_reads = self.reads       # the handshake's reads are not the peer's life
        return Up(event.node, event.flags, event.creation)

    def _protocol_error(self, reason: str) -> list:
        self.phase = Phase.CLOSED
        return [ProtocolError(reason)]

    def _fail(self, failed: hs.Failed) -> list:
        self._take_handshake_output()
        self.phase = Phase.CLOSED
        return [failed]

    def _take_handshake_output(self) -> None:
        self._out += self.handshake.data_to_send()

    # --- decisions during the handshake -----------------------------------------------
    def accept(self, cookie: str, status: str = "ok") -> None:
        self.handshake.accept(cookie, status)
        self._take_handshake_output()

    def ask_alive(self, cookie: str) -> None:
        self.handshake.ask_alive(cookie)
        self._take_handshake_output()

    def reject(self, status: str = "nok", log: str | None = None) -> list:
        """Refuse the peer: returns [Failed]; send data_to_send() (the status), then close."""
        return self._fail(self.handshake.reject(status, log))

    def answer_alive(self, keep_going: bool) -> list:
        self.handshake.answer_alive(keep_going)
        if keep_going:
            self._take_handshake_output()
            return []
        return self._fail(hs.Failed("the old connection is still up"))

    def connection_lost(self) -> hs.Failed | None:
        """The socket closed. During the handshake, says why it failed."""
        was = self.phase
        self.phase = Phase.CLOSED
        if was is Phase.HANDSHAKE and self.handshake.state not in (
                hs.State.CLOSED, hs.State.CONNECTED):
            return self.handshake.connection_lost()
        return None

    # --- bytes out --------------------------------------------------------------------
    def send(self, body: bytes) -> None:
        """Queue one distribution message (a control message body, see control.py)."""
        if self.phase is Phase.UP:
            self._out += frame(body)

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    # --- the clock --------------------------------------------------------------------
    def next_timer(self) -> float | None:
        """When on_timer must run next (on the caller's clock), or None once closed."""
        return None if self.phase is Phase.CLOSED else self._deadline

    def on_timer(self, now: float, writes: int = 0, pending: int = 0) -> list:
        """Run the set-up deadline or one tick. `writes` counts the writes made so far
        on this connection by whoever writes it; `pending` is how many bytes still wait
        to go out. Returns [SetupTimeout] or [PeerSilent] when the connection must close;
        a tick to send, if one is due, waits in data_to_send()."""
        if self.phase is Phase.CLOSED or now < self._deadline:
            return []
        if self.phase is Phase.HANDSHAKE:
            self.phase = Phase.CLOSED
            return [SetupTimeout()]
        if self.reads == self._seen_reads:
            self._silent += 1
        else:
            self._silent = 0
        self._seen_reads = self.reads
        if self._silent >= SILENT_TICKS:
            self.phase = Phase.CLOSED
            return [PeerSilent()]
        idle = writes == self._seen_writes and not pending
        if idle or (self.hidden and self._silent):
            self._out += TICK_FRAME
            writes += 1
        self._seen_writes = writes
        self._deadline = now + self.tick_interval
        return []
