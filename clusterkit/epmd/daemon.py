"""clusterkit's own EPMD daemon: asyncio TCP over the sans-I/O core.

It listens like epmd (every interface, IPv4 and IPv6, unless told which
addresses), keeps a node registered exactly as long as the node's connection
stays open, and answers `epmd -names`, `epmd -kill` and Erlang nodes the way
the real daemon does. Unlike epmd, it keeps one registry per extra loopback
address (127.0.0.2, 127.0.0.3, ...), so `app@127.0.0.2` and `app@127.0.0.3`
both live on one machine. A malformed request closes only that connection and
logs one line; the daemon keeps serving.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import protocol as p
from .client import EpmdUnavailable, default_port
from .protocol import EpmdError, ServerConnection

log = logging.getLogger("clusterkit.epmd")

# Like epmd's CLOSE_TIMEOUT: a connection that is not a registration and stays
# idle this long is probably stuck, so it is closed.
PACKET_TIMEOUT = 60.0


def _is_local(peer, sock) -> bool:
    """Like epmd: a loopback peer, or one that connected from this host's own
    address (then the peer address equals the address it reached)."""
    try:
        peer_ip = ipaddress.ip_address(peer[0].split("%")[0])
    except (TypeError, ValueError, IndexError):
        return False
    if peer_ip.is_loopback:
        return True
    if getattr(peer_ip, "ipv4_mapped", None) and peer_ip.ipv4_mapped.is_loopback:
        return True
    try:
        return peer_ip == ipaddress.ip_address(sock[0].split("%")[0])
    except (TypeError, ValueError, IndexError):
        return False


class _Connection(asyncio.Protocol):
    """Moves bytes between one socket and its ServerConnection."""

    def __init__(self, daemon: "EpmdDaemon"):
        self.daemon = daemon
        self.transport: asyncio.Transport | None = None
        self.conn: ServerConnection | None = None
        self.peer = "?"
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        if peer:
            self.peer = f"[{peer[0]}]:{peer[1]}" if ":" in peer[0] else f"{peer[0]}:{peer[1]}"
        self.conn = ServerConnection(self.daemon.registry_for(sock), epmd_port=self.daemon.port,
                                     local_peer=_is_local(peer, sock),
                                     relaxed=self.daemon.relaxed)
        self.daemon._connections.add(self)
        self._arm_idle()

    def data_received(self, data):
        self._act(self.conn.receive_data(data))
        self._arm_idle()

    def eof_received(self):
        self._act(self.conn.receive_eof())
        return False  # let asyncio close the transport

    def connection_lost(self, exc):
        self._cancel_idle()
        self.daemon._connections.discard(self)
        if self.conn is not None:
            self._act(self.conn.connection_lost())

    def _arm_idle(self):
        self._cancel_idle()
        # A registration's connection may stay silent forever; others may not.
        if self.conn.state == "request" and self.daemon.packet_timeout:
            loop = asyncio.get_running_loop()
            self._idle = loop.call_later(self.daemon.packet_timeout, self._idle_timeout)

    def _cancel_idle(self):
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _idle_timeout(self):
        log.info("closing connection from %s: no complete request within %gs",
                 self.peer, self.daemon.packet_timeout)
        self.close()

    def close(self):
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _act(self, events):
        for event in events:
            if isinstance(event, p.Send):
                if not self.transport.is_closing():
                    self.transport.write(event.data)
            elif isinstance(event, p.Close):
                self.close()
            elif isinstance(event, p.Registered):
                node = event.node
                log.info("registered %s at port %d (creation %d%s)", node.name, node.port,
                         event.creation, ", hidden" if node.hidden else "")
            elif isinstance(event, p.Unregistered):
                log.info("unregistered %s", event.node.name)
            elif isinstance(event, p.Evict):
                self.daemon._close_owner(event.owner)
            elif isinstance(event, p.Notice):
                log.info("%s: %s", self.peer, event.message)
            elif isinstance(event, p.ProtocolError):
                # The one line a malformed request is worth.
                log.warning("malformed request from %s, connection closed: %s", self.peer, event)
            elif isinstance(event, p.Shutdown):
                log.info("got KILL_REQ from %s, stopping", self.peer)
                self.daemon.close()


def _listen_targets(address) -> list[tuple[str, bool]]:
    """(host, required) pairs to bind. Like epmd: everything by default; with
    addresses, those plus loopback, which is always served."""
    if address is None:
        return [("0.0.0.0", True), ("::", False)]
    parts = address.replace(",", " ").split() if isinstance(address, str) else list(address)
    if not parts:
        return [("0.0.0.0", True), ("::", False)]
    ips = []
    for part in parts:
        try:
            ips.append(ipaddress.ip_address(part))
        except ValueError:
            raise ValueError(f"cannot parse IP address {part!r}") from None
    targets = [(str(ip), True) for ip in ips]
    if not any(ip.is_loopback and ip.version == 4 for ip in ips):
        targets.append(("127.0.0.1", True))
    if not any(ip.is_loopback and ip.version == 6 for ip in ips):
        targets.append(("::1", False))  # IPv6 may be switched off: not fatal
    return targets


def _listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Like epmd: restart at once on a port in TIME_WAIT. On Linux this still
        # refuses a second listener on the same address, which is what makes
        # two racing daemons safe.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class AlreadyRunning(EpmdError, OSError):
    """Something already listens on the EPMD port."""


class EpmdDaemon:
    """The daemon, for use inside a running event loop.

        daemon = EpmdDaemon(4369)
        await daemon.start()        # AlreadyRunning if the port is taken
        await daemon.wait_closed()  # until KILL_REQ or close()
    """

    def __init__(self, port: int | None = None, address=None, *, relaxed: bool = False,
                 packet_timeout: float = PACKET_TIMEOUT):
        self.port = default_port() if port is None else port
        self.address = address
        self.relaxed = relaxed
        self.packet_timeout = packet_timeout
        self.registry = p.Registry()
        # One registry per extra loopback address (127.0.0.2, ...): `app@127.0.0.2` and
        # `app@127.0.0.3` share the name `app` on one machine. See registry_for.
        self.registries: dict[str, p.Registry] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: set[_Connection] = set()
        self._closed: asyncio.Event | None = None

    def registry_for(self, sockname) -> p.Registry:
        """The registry of the local address a connection reached. 127.0.0.1, ::1 and
        every non-loopback address share the main one (epmd's behaviour); any other
        127.x.y.z has its own, so a node registers and is looked up at its own address."""
        try:
            ip = ipaddress.ip_address(sockname[0].split("%")[0])
        except (TypeError, ValueError, IndexError):
            return self.registry
        if getattr(ip, "ipv4_mapped", None):
            ip = ip.ipv4_mapped
        if ip.version != 4 or not ip.is_loopback or str(ip) == "127.0.0.1":
            return self.registry
        key = str(ip)
        if key not in self.registries:
            self.registries[key] = p.Registry()
        return self.registries[key]

    @property
    def addresses(self) -> list[tuple]:
        return [s.getsockname() for srv in self._servers for s in srv.sockets]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._closed = asyncio.Event()
        sockets = []
        try:
            for host, required in _listen_targets(self.address):
                try:
                    sock = _listen_socket(host, self.port)
                except OSError as err:
                    if err.errno == errno.EADDRINUSE:
                        raise AlreadyRunning(errno.EADDRINUSE,
                                             f"there is already an EPMD running at port "
                                             f"{self.port} on {host}") from None
                    if required:
                        raise OSError(err.errno, f"cannot listen on {host} port {self.port}: "
                                                 f"{err.strerror}") from None
                    log.debug("not listening on %s: %s", host, err.strerror)
                    continue
                sockets.append(sock)
                if self.port == 0:  # tests: every address shares the first free port
                    self.port = sock.getsockname()[1]
            for sock in sockets:
                self._servers.append(await loop.create_server(lambda: _Connection(self), sock=sock))
        except BaseException:
            for srv in self._servers:
                srv.close()
            self._servers.clear()
            for sock in sockets:
                sock.close()
            raise
        log.info("listening on port %d (%s)", self.port,
                 ", ".join(str(a[0]) for a in self.addresses))

    def close(self) -> None:
        """Stop listening and drop every connection (registered nodes see EOF)."""
        for srv in self._servers:
            srv.close()
        for conn in list(self._connections):
            conn.close()
        if self._closed is not None:
            self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()
        for srv in self._servers:
            await srv.wait_closed()

    def _close_owner(self, owner) -> None:
        for conn in list(self._connections):
            if conn.conn is owner:
                conn.close()

    async def __aenter__(self) -> "EpmdDaemon":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()
        await self.wait_closed()


async def serve(port: int | None = None, address=None, *, relaxed: bool = False,
                ready=None) -> bool:
    """Serve until a KILL_REQ (or cancellation). False if the port was taken:
    like epmd, that is not an error, since an EPMD is running. `ready` is
    called once the daemon listens."""
    daemon = EpmdDaemon(port, address, relaxed=relaxed)
    try:
        await daemon.start()
    except AlreadyRunning as err:
        log.info("%s", err)
        return False
    try:
        if ready is not None:
            ready()
        await daemon.wait_closed()
    finally:
        daemon.close()
    return True


def _is_detached() -> bool:
    # start_new_session=True makes the child a session leader: that is how
    # ensure_running starts us, and how we know not to detach again.
    try:
        return os.getsid(0) == os.getpid()
    except OSError:
        return False


def run(port: int | None = None, address=None, *, relaxed: bool = False,
        daemon: bool = False, ready_fd: int | None = None) -> int:
    """Run the daemon, blocking; returns the exit status.

    With daemon=True, like `epmd -daemon`: the daemon runs detached from this
    terminal and this call returns once it accepts connections. `ready_fd` is
    a pipe to ensure_running: one byte once listening, or just EOF when another
    EPMD already has the port.
    """
    port = default_port() if port is None else port
    if daemon and not _is_detached():
        try:
            ensure_running(port, address=address, relaxed=relaxed)
        except EpmdError as err:
            print(f"clusterkit epmd: {err}", file=sys.stderr)
            return 1
        return 0

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        try:
            # SIGTERM (kill, systemd) stops as cleanly as Ctrl-C.
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        try:
            return await serve(port, address, relaxed=relaxed, ready=say_ready)
        except asyncio.CancelledError:
            return True

    def say_ready():
        nonlocal ready_fd
        if ready_fd is not None:
            fd, ready_fd = ready_fd, None
            with contextlib.suppress(OSError):  # the caller may have given up waiting
                os.write(fd, b"1")
            with contextlib.suppress(OSError):
                os.close(fd)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass  # Ctrl-C in the foreground: a normal way to stop
    except (OSError, ValueError) as err:
        log.error("%s", err)
        return 1
    finally:
        if ready_fd is not None:
            with contextlib.suppress(OSError):
                os.close(ready_fd)  # never listened: EOF tells ensure_running
    return 0


def _accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# Daemons this process started. Keeping the Popen objects alive avoids
# "subprocess is still running" warnings; poll() reaps the ones that ended.
_spawned: list[subprocess.Popen] = []


def ensure_running(port: int | None = None, timeout: float = 5.0, *, address=None,
                   relaxed: bool = False) -> str:
    """Make sure an EPMD accepts connections on 127.0.0.1:port.

    "running" if one already does (real epmd or ours). Otherwise start our
    daemon as a detached process that outlives the caller, wait until it
    listens, and return "started". Two callers may race: the loser's daemon
    cannot bind and exits quietly with status 0, and its caller returns
    "running" once the winner accepts.
    """
    port = default_port() if port is None else port
    for proc in list(_spawned):
        if proc.poll() is not None:
            _spawned.remove(proc)
    if _accepts(port):
        return "running"
    deadline = time.monotonic() + timeout
    # The child tells us through a pipe whether it is the one listening (one
    # byte) or lost a race (EOF), so we never return while it is still
    # deciding, and never leave a late starter that binds after a kill.
    ready_r, ready_w = os.pipe()
    args = [sys.executable, "-m", "clusterkit", "epmd", "--port", str(port), "--daemon",
            "--ready-fd", str(ready_w)]
    if address is not None:
        args += ["--address", address if isinstance(address, str) else ",".join(address)]
    if relaxed:
        args.append("--relaxed-command-check")
    env = dict(os.environ)
    # The child must import this same clusterkit, installed or not.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(x for x in (root, env.get("PYTHONPATH")) if x)
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True,
                                pass_fds=(ready_w,), cwd="/", env=env)
    finally:
        os.close(ready_w)
    _spawned.append(proc)
    try:
        answer = None
        while answer is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EpmdUnavailable(f"clusterkit epmd did not start listening on "
                                      f"127.0.0.1:{port} within {timeout}s")
            readable, _, _ = select.select([ready_r], [], [], remaining)
            if readable:
                answer = os.read(ready_r, 1)
    finally:
        os.close(ready_r)
    if answer:
        return "started"
    # Our daemon never listened: it lost a race (status 0) or failed.
    try:
        status = proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        status = None
    if status != 0:
        raise EpmdError(f"clusterkit epmd could not start on port {port} "
                        f"(exit status {status}); run `clusterkit epmd --port {port}` "
                        f"to see why")
    while not _accepts(port):
        if time.monotonic() > deadline:
            raise EpmdUnavailable(f"no EPMD accepts connections on 127.0.0.1:{port}")
        time.sleep(0.02)
    return "running"
