"""Connections to other nodes: dialling, accepting, simultaneous connects, up and down.

A mixin of LocalNode (it shares the node's tables): this is net_kernel's part of the
node, the decisions dist_util asks net_kernel for during a handshake. Runs on the loop.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from .. import epmd
from ..dist import handshake as hs
from ..dist.connection import keeps_own_attempt
from ..etf import Atom
from ..names import NodeName, mixing_error, parse_remote
from .atoms import DOWN, NOCONNECTION, NODEDOWN, NODEUP, PROCESS
from .connection import Connection
from .log_limit import REJECTIONS, host_of

log = logging.getLogger("clusterkit")


class _Dialing:
    """Stands in `_pending` while we look the peer up in EPMD, before any socket exists.

    Marking the attempt pending from its very start is what net_kernel does too: an
    incoming attempt from the same peer must see it, or both sides may accept each
    other's connection and then each close the one the other kept.
    """
    up = False
    superseded = False

    def disconnect(self, reason: str = "") -> None:
        self.superseded = True


class Peers:
    def cookie_for(self, node: Atom) -> str:
        return self.cookies.get(Atom(node), self.cookie)

    async def connect(self, node: Any) -> bool:
        node = Atom(node)
        if node == self.atom:
            return True
        conn = self.connections.get(node)
        if conn is not None and conn.up:
            return True
        other = parse_remote(node)
        if other.long != self.name.long:
            log.error("%s", mixing_error(self.name, other))
            return False
        waiter = self._waiters.get(node)
        if waiter is None or waiter.done():
            waiter = self.loop.create_future()
            self._waiters[node] = waiter
            self.loop.create_task(self._dial(node, other))
        return await asyncio.shield(waiter)

    def _resolve(self, node: Atom, ok: bool) -> None:
        waiter = self._waiters.pop(node, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(ok)

    async def _dial(self, node: Atom, other: NodeName) -> None:
        marker = _Dialing()
        self._pending[node] = marker
        try:
            host = other.host
            if self.resolve_host is not None:
                # A name only the kit's DNS knows (convoy@convoy2.railway.internal).
                host = await self.loop.run_in_executor(None, self.resolve_host, host)
            info = await asyncio.wait_for(
                epmd.port_please(host, other.alive, self.epmd_port), self.setup_time)
            if marker.superseded or self._pending.get(node) is not marker:
                # The peer's own attempt won; it resolves the waiters, or this timer does.
                self.loop.call_later(self.setup_time, self._resolve, node, False)
                return
            up = self.connections.get(node)
            if up is not None and up.up:
                # The peer's attempt to us finished while we looked it up: use that one.
                self._pending.pop(node, None)
                self._resolve(node, True)
                return
            if info is None or info.highest_version < 6:
                if info is None:
                    log.debug("no node %s registered with EPMD on %s", other.alive,
                              other.host)
                else:
                    log.error("%s speaks distribution version %d; clusterkit needs 6 "
                              "(OTP 23+)", node, info.highest_version)
                self._pending.pop(node, None)
                self._resolve(node, False)
                return
            conn = Connection(self, hs.Role.INITIATOR, node, cookie=self.cookie_for(node))
            self._pending[node] = conn
            marker = conn
            sock = await asyncio.wait_for(self._open_socket(host, info.port),
                                          self.setup_time)
            conn.attach(sock)
        except (OSError, asyncio.TimeoutError, epmd.EpmdError) as exc:
            log.debug("cannot connect to %s: %s", node, exc)
            if self._pending.get(node) is marker:
                self._pending.pop(node, None)
            if not getattr(marker, "superseded", False):
                self._resolve(node, False)

    async def _open_socket(self, host: str, port: int) -> socket.socket:
        """A connected, non-blocking TCP socket to host:port (any address family)."""
        infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        error: OSError | None = None
        for family, type_, proto, _name, address in infos:
            sock = socket.socket(family, type_, proto)
            sock.setblocking(False)
            try:
                await self.loop.sock_connect(sock, address)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
            except BaseException:
                sock.close()
                raise
        raise error or OSError(f"cannot resolve {host}")

    def decide_accept(self, conn: Connection, event: hs.NameReceived) -> list:
        """Acceptor: answer the initiator's name. Returns the events that the answer
        makes (a refusal's Failed), for the connection to handle."""
        # No short/long check here: like OTP's dist_util, an acceptor takes any
        # `name@host` (erl_call calls itself c17@shorthost even toward a long-name
        # node). Only the dialling side refuses to mix, with Erlang's own lines.
        peer = Atom(event.node)
        if peer == self.atom:
            return conn.proto.reject("not_allowed")
        allow = getattr(self, "allow", None)     # net_kernel:allow/1; None: anyone
        if allow is not None and peer not in allow:
            log.error("** Connection attempt from disallowed node %s ** ", peer)
            return conn.proto.reject("not_allowed")
        status = "ok"
        pending = self._pending.get(peer)
        if pending is not None and pending is not conn and not pending.up:
            if keeps_own_attempt(str(self.atom), str(peer)):
                return conn.proto.reject("nok")
            status = "ok_simultaneous"
            pending.superseded = True
            pending.disconnect("simultaneous")
            self._pending.pop(peer, None)
        existing = self.connections.get(peer)
        if existing is not None and existing.up:
            # We have a connection to this node already: ask whether it is dead on
            # its side (it restarted, or lost the socket before we noticed).
            conn.proto.ask_alive(self.cookie_for(peer))
            return []
        conn.proto.accept(self.cookie_for(peer), status)
        return []

    def alive_confirmed(self, conn: Connection) -> None:
        existing = self.connections.get(conn.peer)
        if existing is not None and existing is not conn:
            existing.disconnect("replaced")

    def answer_alive(self, conn: Connection) -> bool:
        """Initiator: the acceptor says it has a connection to us. Is ours dead?
        Only if this attempt is still our pending one and nothing else came up."""
        existing = self.connections.get(conn.peer)
        if existing is not None and existing.up and existing is not conn:
            return False
        return self._pending.get(conn.peer) is conn

    def handshake_failed(self, conn: Connection, failed: hs.Failed) -> None:
        if failed.log:
            key = host_of(conn.channel.peername if conn.channel else None)
            # per peer address and line: the same refusal repeated is the flood
            text = REJECTIONS.line((key, failed.log), failed.log)
            if text is not None:
                log.error("%s", text)
        if conn.role is hs.Role.INITIATOR:
            if self._pending.get(conn.peer) is conn:
                self._pending.pop(conn.peer, None)
            up = self.connections.get(conn.peer)
            if up is not None and up.up and up is not conn:
                self._resolve(conn.peer, True)      # another connection to it is up
                return
            if conn.superseded or "(nok)" in failed.reason:
                # The other node's attempt to us goes on and will resolve the waiters.
                self.loop.call_later(self.setup_time, self._resolve, conn.peer, False)
                return
            log.debug("connection to %s failed: %s", conn.peer, failed.reason)
            self._resolve(conn.peer, False)
        elif conn.peer is not None and self._pending.get(conn.peer) is None:
            # We gave way to this peer's attempt (a crossed connect) and it failed:
            # whoever waits for a connection to it gets False, not an endless wait.
            up = self.connections.get(conn.peer)
            if up is None or not up.up:
                self._resolve(conn.peer, False)

    def connection_up(self, conn: Connection) -> bool:
        peer = conn.peer
        existing = self.connections.get(peer)
        if existing is not None and existing.up and existing is not conn:
            return False
        self.connections[peer] = conn
        if self._pending.get(peer) is conn:
            self._pending.pop(peer, None)
        self._resolve(peer, True)
        self.notify_nodes(NODEUP, conn)
        self.run_node_hooks(True, peer, conn.hidden)
        return True

    def connection_down(self, conn: Connection, reason: str) -> None:
        peer = conn.peer
        if self.connections.get(peer) is conn:
            del self.connections[peer]
        for ref, (watcher, obj) in list(conn.out_monitors.items()):
            self.deliver_pid(watcher, (DOWN, ref, PROCESS, obj, NOCONNECTION))
        conn.out_monitors.clear()
        for proc in list(self.processes.values()):
            with self._lock:
                for ref, (watcher, _obj) in list(proc.monitored_by.items()):
                    if watcher.node == peer:
                        del proc.monitored_by[ref]
                broken = [p for p in proc.links if p.node == peer]
                proc.links.difference_update(broken)
            for linked in broken:
                self.exit_signal(proc, linked, NOCONNECTION)
        for pid in self.single_node_monitors.pop(peer, ()):
            self.deliver_pid(pid, (NODEDOWN, peer))
        self.notify_nodes(NODEDOWN, conn, reason)
        self.run_node_hooks(False, peer, reason)

    def disconnect(self, node: Any) -> bool:
        node = Atom(node)

        async def work():
            conn = self.connections.get(node)
            if conn is None:
                return False
            conn.disconnect("disconnect")
            return True
        return self.runtime.run(work())
