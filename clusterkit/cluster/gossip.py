"""libcluster's Gossip strategy: UDP multicast heartbeats, on libcluster 3.5's wire.

Every node sends `heartbeat::` + its name to a multicast group (233.252.1.32:45892 unless
configured), at once and then every `:rand.uniform(5000)` ms, and connects to every node
it hears. With a `secret`, heartbeats are encrypted (see gossip_wire.py) and packets that
do not decrypt are dropped, so several clusters can share one group. Gossip never
disconnects anyone: a node that goes away simply stops being heard, and a node that
comes back is connected again by its next heartbeat.

Any number of nodes on one machine: each socket sets SO_REUSEADDR (and SO_REUSEPORT where
there is one) and multicast loop. On Linux a socket bound to 127.0.0.1 receives no group
datagrams, so when this node's own address is loopback the socket binds the wildcard
address and uses 127.0.0.1 as its multicast interface: heartbeats stay on the machine.

Threads: heartbeats are sent from the topology's worker (base.py), which also runs the
connects. Datagrams are read and decoded on the node's loop (they are small and cheap),
and each name heard is handed to the worker, at most one job per name at a time.
Outside lookups come in through arguments: `socket_factory(plan)`, `rand()` (milliseconds
until the next heartbeat) and the base's clock.
"""
from __future__ import annotations

import ipaddress
import random
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable

from . import gossip_wire as wire
from .base import STRATEGIES, Strategy

__all__ = ["Gossip", "SocketPlan", "plan_socket", "open_socket"]

MAX_INTERVAL_MS = 5000   # libcluster: Process.send_after(self(), :heartbeat, :rand.uniform(5_000))
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class SocketPlan:
    """What the gossip socket needs: where to bind, which group on which interface."""
    bind: str                  # address to bind (the port is `port`)
    port: int
    target: str                # where heartbeats go: the group, or the broadcast address
    group: str | None          # multicast group to join (None: broadcast only)
    interface: str             # interface address for sending and for the membership
    ttl: int


def _ipv4(value: Any, key: str, topology_error: Callable) -> str:
    """An IPv4 address from "1.2.3.4" or Elixir's {1, 2, 3, 4}."""
    if isinstance(value, (tuple, list)) and len(value) == 4 and all(
            isinstance(p, int) and 0 <= p <= 255 for p in value):
        return ".".join(str(p) for p in value)
    if isinstance(value, str):
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            pass
    raise topology_error(f"{key} must be an IPv4 address such as \"233.252.1.32\" or "
                         f"(233, 252, 1, 32), not {value!r}", key)


def is_loopback_host(host: str) -> bool:
    """Does this host name or address mean this machine's loopback (127.0.0.0/8, ::1)?"""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def plan_socket(config: dict, self_loopback: bool) -> SocketPlan:
    """The socket for a validated config; no I/O.

    libcluster binds `if_addr` and joins the group on `multicast_if` (or any interface).
    A socket bound to a loopback address hears no group datagrams on Linux, so a loopback
    `if_addr` becomes the multicast interface and the socket binds the wildcard instead;
    the same happens when this node's own address is loopback and neither is set."""
    bind = config["if_addr"]
    iface = config["multicast_if"]
    if ipaddress.IPv4Address(bind).is_loopback:
        iface = iface or bind
        bind = "0.0.0.0"
    if iface is None:
        iface = LOOPBACK if self_loopback else "0.0.0.0"
    group = None if config["broadcast_only"] else config["multicast_addr"]
    return SocketPlan(bind=bind, port=config["port"], target=config["multicast_addr"],
                      group=group, interface=iface, ttl=config["multicast_ttl"])


def open_socket(plan: SocketPlan) -> socket.socket:
    """A non-blocking UDP socket set up as `plan` says (libcluster's options)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        # Erlang's reuseaddr is SO_REUSEADDR; sharing the port with Elixir nodes on Linux
        # needs it on every socket. SO_REUSEPORT also lets our own sockets share it.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if plan.group is not None:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, plan.ttl)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            if plan.interface != "0.0.0.0":
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                             socket.inet_aton(plan.interface))
            # Linux hands a wildcard socket every group any socket joined on the port;
            # this one only wants its own group.
            if hasattr(socket, "IP_MULTICAST_ALL"):
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_ALL, 0)
        s.bind((plan.bind, plan.port))
        if plan.group is not None:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                         socket.inet_aton(plan.group) + socket.inet_aton(plan.interface))
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


class Gossip(Strategy):
    """libcluster's Cluster.Strategy.Gossip."""

    name = "gossip"
    defaults = {
        "port": 45892,
        "if_addr": "0.0.0.0",
        "multicast_addr": "233.252.1.32",
        "multicast_if": None,
        "multicast_ttl": 1,
        "broadcast_only": False,
        "secret": None,
    }
    aliases = {"multicast_address": "multicast_addr", "ttl": "multicast_ttl",
               "interface": "multicast_if", "ip": "if_addr", "address": "if_addr",
               "password": "secret", "broadcast": "broadcast_only"}

    def __init__(self, *args, socket_factory: Callable[[SocketPlan], Any] = open_socket,
                 rand: Callable[[], int] | None = None, **kw):
        super().__init__(*args, **kw)
        self.socket_factory = socket_factory
        self.rand = rand or (lambda: random.randint(1, MAX_INTERVAL_MS))
        self.sock = None
        self.sent = 0
        self.ignored = 0
        self._pending: set = set()        # names handed to the worker and not yet handled
        self._pending_lock = threading.Lock()
        self._reading = False
        # The plan is known before start, so status() can say where heartbeats will go.
        self.plan = plan_socket(self.config, is_loopback_host(self.self_node.partition("@")[2]))

    def validate(self) -> None:
        c = self.config
        port = c["port"]
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise self.config_error(f"port must be a UDP port number 1-65535, not {port!r}",
                                    "port")
        for key in ("if_addr", "multicast_addr"):
            c[key] = _ipv4(c[key], key, self.config_error)
        if c["multicast_if"] is not None:
            c["multicast_if"] = _ipv4(c["multicast_if"], "multicast_if", self.config_error)
        ttl = c["multicast_ttl"]
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= 255:
            raise self.config_error(f"multicast_ttl must be 0-255, not {ttl!r}",
                                    "multicast_ttl")
        if not isinstance(c["broadcast_only"], bool):
            raise self.config_error(f"broadcast_only must be True or False, not "
                                    f"{c['broadcast_only']!r}", "broadcast_only")
        secret = c["secret"]
        if secret is not None and not isinstance(secret, (str, bytes)):
            raise self.config_error(f"secret must be a string (or bytes), not "
                                    f"{type(secret).__name__}", "secret")
        if not c["broadcast_only"] and not ipaddress.IPv4Address(
                c["multicast_addr"]).is_multicast:
            raise self.config_error(f"multicast_addr {c['multicast_addr']} is not a multicast "
                                    "address (224.0.0.0/4); for a broadcast address set "
                                    "broadcast_only: True", "multicast_addr")

    # -- life cycle (on the worker thread)

    def init(self) -> None:
        try:
            self.sock = self.socket_factory(self.plan)
        except OSError as e:
            self.warn(f"cannot open the gossip socket on {self.plan.bind}:{self.plan.port}: "
                      f"{e}; not joining cluster")
            return
        if not self.worker.running:       # stopped while the socket was being opened
            self.sock.close()
            self.sock = None
            return
        if self.loop is not None:
            self._reading = True
            self.loop.call_soon_threadsafe(self._add_reader, self.sock)
        self.heartbeat()

    def stop(self) -> None:
        super().stop()
        sock, self.sock = self.sock, None
        if sock is None:
            return
        if self._reading and self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(self._close_on_loop, sock)
                return
            except RuntimeError:      # the node's loop has already ended
                pass
        sock.close()

    def _add_reader(self, sock) -> None:
        if self.sock is sock:         # not stopped meanwhile
            self.loop.add_reader(sock.fileno(), self._readable, sock)

    def _close_on_loop(self, sock) -> None:
        try:
            self.loop.remove_reader(sock.fileno())
        except (ValueError, OSError):
            pass
        sock.close()

    # -- sending (worker thread)

    def heartbeat(self) -> None:
        """Send one heartbeat now and schedule the next, as libcluster's handle_info."""
        sock = self.sock
        if sock is None:
            return
        # Schedule first: a send that fails must not end the heartbeats.
        self.call_later(self.rand() / 1000.0, self.heartbeat)
        packet = wire.encode(self.self_node, self.config["secret"])
        try:
            sock.sendto(packet, (self.plan.target, self.plan.port))
            self.sent += 1
        except OSError as e:      # link down, buffer full: the next heartbeat tries again
            self.debug(f"heartbeat not sent: {e}")

    # -- receiving (node loop thread)

    def _readable(self, sock) -> None:
        # One datagram per wake-up: the selector is level-triggered, so the loop calls
        # again while more wait, and other work on the loop gets its turn in between.
        try:
            data, addr = sock.recvfrom(wire.MAX_PACKET + 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.debug(f"gossip socket read failed: {e}")
            return
        self.datagram(data, addr)

    def datagram(self, data: bytes, addr=None) -> None:
        """One datagram received: a heard node goes to the worker, anything else is
        dropped with one log line."""
        try:
            node = wire.decode(data, self.config["secret"])
        except wire.BadHeartbeat as e:
            self.ignored += 1
            where = f" from {addr[0]}:{addr[1]}" if addr else ""
            self.debug(f"ignored a datagram{where}: {e}")
            return
        if node == self.self_node:
            return
        with self._pending_lock:
            if node in self._pending:
                return
            self._pending.add(node)
        if not self.submit(self._heard, node):
            with self._pending_lock:
                self._pending.discard(node)

    def _heard(self, node) -> None:
        with self._pending_lock:
            self._pending.discard(node)
        self.debug(f"received heartbeat from {node}")
        self.connect_nodes([node])

    def status(self) -> dict:
        out = super().status()
        out.update(sent=self.sent, ignored=self.ignored,
                   group=f"{self.plan.target}:{self.plan.port} via {self.plan.interface}")
        return out


STRATEGIES[Gossip.name] = Gossip
