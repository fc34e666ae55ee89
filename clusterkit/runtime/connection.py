"""One distribution connection: the sans-I/O DistConnection driven over a Channel.

A thin adapter. The rules (handshake, framing, ticks, set-up timeout) live in
`dist/connection.py`; the bytes move through `channel.py`; what the peer says goes to
the node (`peers.py` for connection decisions, `inbound.py` for messages). Loop thread
only, except `send_frame_threadsafe`.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING

from ..dist import handshake as hs
from ..dist.connection import (DistConnection, PeerSilent, ProtocolError, SetupTimeout, Up)
from ..dist.framing import frame
from ..etf import Atom, atom_text
from . import inbound
from .channel import Channel
from .log_limit import REJECTIONS, host_of

if TYPE_CHECKING:
    from .node import LocalNode

log = logging.getLogger("clusterkit")

_HANDSHAKE_EVENTS = (hs.NameReceived, hs.AliveQuery, hs.AliveConfirmed,
                     hs.SimultaneousAccepted, hs.Failed, Up, ProtocolError)


class Connection:
    def __init__(self, node: "LocalNode", role: hs.Role, peer: Atom | None = None,
                 cookie: str | None = None):
        self.node = node
        self.role = role
        self.peer: Atom | None = peer
        self.proto = DistConnection(
            role, str(node.name), node.creation, now=node.loop.time(), hidden=node.hidden,
            peer_node=str(peer) if peer else None, cookie=cookie,
            net_ticktime=node.net_ticktime, setup_time=node.setup_time,
            max_frame=node.max_message_size)
        self.channel: Channel | None = None
        self.up = False
        self.closed = False
        self.superseded = False         # a crossed connect made this attempt give way
        self.close_reason = "connection_closed"
        # monitors this node holds on processes over there: ref -> (local watcher, object)
        self.out_monitors: dict = {}
        self._timer: asyncio.TimerHandle | None = None

    # --- what the handshake agreed ------------------------------------------------------
    @property
    def flags(self) -> int:
        return self.proto.flags

    @property
    def hidden(self) -> bool:
        return self.proto.hidden

    @property
    def payload_exits(self) -> bool:
        return self.proto.payload_exits

    @property
    def peer_creation(self) -> int:
        return self.proto.peer_creation

    @property
    def reads(self) -> int:
        return self.proto.reads

    # --- the socket -------------------------------------------------------------------
    def attach(self, sock: socket.socket) -> None:
        """Start on a connected socket (ours after connect, or accepted)."""
        if self.closed:
            sock.close()
            return
        node = self.node
        self.channel = Channel(node.loop, sock, on_data=self._data, on_closed=self._lost,
                               loop_thread=node.runtime.thread_ident,
                               busy_limit=node.dist_buf_busy_limit)
        self.channel.start()
        self._flush()
        self._schedule()

    def _data(self, data: bytes) -> None:
        proto = self.proto
        if self.up:
            # Connected, the hot path: only control messages come out, and at most one
            # ProtocolError, last.
            events = proto.receive_data(data, 0.0)
            if events and type(events[-1]) is ProtocolError:
                self._handle(events)
            elif events:
                inbound.deliver_all(self.node, self, events)
            return
        self._handle(proto.receive_data(data, self.node.loop.time()))
        self._flush()

    def _lost(self, exc) -> None:
        self.closed = True
        self._cancel_timer()
        if self.up:
            self.up = False
            self.node.connection_down(self, self.close_reason)
            return
        failed = self.proto.connection_lost()
        if failed is not None:
            self.node.handshake_failed(self, failed)

    # --- events -------------------------------------------------------------------------
    def _handle(self, events: list) -> None:
        node = self.node
        messages: list = []
        for event in events:
            if not isinstance(event, _HANDSHAKE_EVENTS):
                messages.append(event)
                continue
            if messages:
                inbound.deliver_all(node, self, messages)
                messages = []
            if isinstance(event, hs.NameReceived):
                self.peer = Atom(event.node)
                self._handle(node.decide_accept(self, event))
            elif isinstance(event, hs.AliveQuery):
                keep_going = node.answer_alive(self)
                self._handle(self.proto.answer_alive(keep_going))
            elif isinstance(event, hs.AliveConfirmed):
                node.alive_confirmed(self)
            elif isinstance(event, hs.Failed):
                self._flush()               # a refusal's status goes out before we close
                if event.protocol_error:
                    self._warn(f"bad handshake: {event.reason}")
                    self.close_reason = "protocol_error"
                node.handshake_failed(self, event)
                self._close()
            elif isinstance(event, Up):
                self._flush()
                self.up = True              # before the hooks run: they may send at once
                if not node.connection_up(self):
                    self.up = False
                    self._close()
                    return
                self._schedule()
            elif isinstance(event, ProtocolError):
                self._warn(event.reason)
                self.close_reason = "protocol_error"
                self._close()
            if self.closed:
                return
        if messages and not self.closed:
            inbound.deliver_all(node, self, messages)

    # --- sending ------------------------------------------------------------------------
    def _flush(self) -> None:
        data = self.proto.data_to_send()
        if data and self.channel is not None:
            self.channel.write(data)

    def send_frame(self, body: bytes) -> None:
        """Send one distribution message (loop thread: never blocks)."""
        if self.up:
            self.proto.send(body)
            self._flush()

    def send_frame_threadsafe(self, body: bytes) -> bool:
        """Send from a user thread. Past the busy limit it waits until the outbox drains
        or the connection goes down (then the message is dropped, as in Erlang)."""
        channel = self.channel
        if channel is None or not self.up:
            return False
        return channel.write(frame(body), block=True)

    # --- the clock --------------------------------------------------------------------------
    def _schedule(self) -> None:
        self._cancel_timer()
        when = self.proto.next_timer()
        if when is not None and not self.closed:
            self._timer = self.node.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.closed:
            return
        channel = self.channel
        events = self.proto.on_timer(self.node.loop.time(),
                                     channel.writes if channel else 0,
                                     channel.pending if channel else 0)
        for event in events:
            if isinstance(event, SetupTimeout):
                self.node.handshake_failed(self, hs.Failed(
                    "handshake did not finish within the setup time"))
                self._close()
                return
            if isinstance(event, PeerSilent):
                log.error("** Node %s not responding **\n** Removing (timedout) connection **",
                          atom_text(self.peer))
                self.close_reason = "net_tick_timeout"
                self._close()
                return
        self._flush()
        self._schedule()

    # --- closing ------------------------------------------------------------------------
    def disconnect(self, reason: str = "disconnect") -> None:
        self.close_reason = reason
        self._close()

    def _warn(self, why: str) -> None:
        who = atom_text(self.peer) if self.peer else (
            self.channel.peername if self.channel else "an unknown peer")
        key = (atom_text(self.peer) if self.peer else host_of(
            self.channel.peername if self.channel else None), why.split(":")[0])
        text = REJECTIONS.line(key, f"closing distribution connection from {who}: {why}")
        if text is not None:
            log.warning("%s", text)

    def _close(self) -> None:
        self._cancel_timer()
        if self.channel is not None:
            self.channel.close()
        elif not self.closed:
            self.closed = True              # not attached yet: attach() closes the socket

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
