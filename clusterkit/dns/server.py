"""The DNS server's I/O: asyncio UDP and TCP around the sans-I/O `Authority`.

UDP: one datagram in, at most one out. TCP: 2-byte length-prefixed messages, several
per connection (RFC 7766), closed after an idle minute. A malformed packet costs that
one datagram or that one connection, with one log line. SIGHUP reloads the zone files
(dynamic changes since the last load are dropped, as with BIND without a journal).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from .authority import Authority, Policy, load_zone

log = logging.getLogger("clusterkit.dns")

TCP_IDLE = 60.0
TCP_MAX_CONNECTIONS = 64      # past this, new TCP connections are closed at once


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: "DnsServer"):
        self.server = server
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        reply = self.server.authority.handle(data, addr[0], tcp=False)
        if reply is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc):
        log.debug("UDP error: %s", exc)


class _Tcp(asyncio.Protocol):
    def __init__(self, server: "DnsServer"):
        self.server = server
        self.buffer = b""
        self.transport = None
        self.peer = None
        self._idle = None

    def connection_made(self, transport):
        self.transport = transport
        self.peer = (transport.get_extra_info("peername") or ("?",))[0]
        if len(self.server._tcp) >= TCP_MAX_CONNECTIONS:
            log.warning("too many DNS TCP connections; closed one from %s", self.peer)
            transport.close()
            return
        self.server._tcp.add(self)
        self._arm()

    def _arm(self):
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(TCP_IDLE, self.transport.close)

    def data_received(self, data):
        self.buffer += data
        self._arm()
        while len(self.buffer) >= 2:
            size = int.from_bytes(self.buffer[:2], "big")
            if len(self.buffer) < 2 + size:
                return
            wire, self.buffer = self.buffer[2:2 + size], self.buffer[2 + size:]
            reply = self.server.authority.handle(wire, self.peer, tcp=True)
            if reply is None:
                self.transport.close()      # already logged by the authority
                return
            self.transport.write(len(reply).to_bytes(2, "big") + reply)

    def connection_lost(self, exc):
        if self._idle is not None:
            self._idle.cancel()
        self.server._tcp.discard(self)


class DnsServer:
    """Serve `zone_files` on `address`:`port` (UDP and TCP) in the running loop.

        server = DnsServer(["railway.internal.zone"], port=5353)
        await server.start()
    """

    def __init__(self, zone_files=(), port: int = 5353, address: str = "127.0.0.1", *,
                 policy: Policy | None = None, zones=()):
        self.zone_files = [Path(f) for f in zone_files]
        self.port = port
        self.address = address
        self.authority = Authority(list(zones) + [load_zone(f) for f in self.zone_files],
                                   policy)
        self._udp = None
        self._server = None
        self._tcp: set[_Tcp] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        # TCP first: with port 0 it picks the port, and UDP takes the same one.
        self._server = await loop.create_server(lambda: _Tcp(self), self.address, self.port,
                                                family=family, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(self.address, self.port), family=family)
        except BaseException:
            self._server.close()
            raise
        log.info("DNS listening on %s port %d (UDP and TCP) for %s", self.address, self.port,
                 ", ".join(sorted(str(o) for o in self.authority.zones)) or "no zones")

    def reload(self) -> None:
        """Read the zone files again; a file that fails keeps its old zone."""
        for path in self.zone_files:
            try:
                zone = load_zone(path)
            except (OSError, ValueError) as exc:
                log.error("reload of %s failed, keeping the old zone: %s", path, exc)
                continue
            self.authority.add_zone(zone)
            log.info("reloaded %s (%s)", path, zone.origin)

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()
        for conn in list(self._tcp):
            conn.transport.close()


class ServerThread:
    """A DnsServer on its own loop thread, for tests and notebooks.

        with ServerThread(zones=[zone]) as srv:
            srv.port ...
    """

    def __init__(self, zone_files=(), port: int = 0, address: str = "127.0.0.1", **kw):
        self.server = DnsServer(zone_files, port, address, **kw)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="clusterkit-dns")

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def authority(self) -> Authority:
        return self.server.authority

    def start(self) -> "ServerThread":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def run(zone_files, port: int, address: str = "127.0.0.1", *, policy=None,
        ready_fd: int | None = None) -> int:
    """Serve in the foreground until SIGINT/SIGTERM; SIGHUP reloads the zones."""
    try:
        server = DnsServer(zone_files, port, address, policy=policy)
    except (OSError, ValueError) as exc:
        print(f"clusterkit dns: {exc}", file=sys.stderr)
        return 1

    async def main():
        loop = asyncio.get_running_loop()
        await server.start()
        if ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(ready_fd, f"{server.port}\n".encode())
                os.close(ready_fd)
        done = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
        loop.add_signal_handler(signal.SIGHUP, server.reload)
        await done.wait()
        server.close()

    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"clusterkit dns: cannot listen on {address} port {port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    return 0


def spawn(zone_files, port: int, address: str = "127.0.0.1", *, extra_args=(),
          timeout: float = 10.0, log_file=None) -> subprocess.Popen:
    """Start `clusterkit dns` as a detached daemon (as the lab starts EPMD) and return
    once it listens. The caller owns the process: terminate() stops it."""
    ready_r, ready_w = os.pipe()
    args = [sys.executable, "-m", "clusterkit", "dns", "--port", str(port),
            "--address", address, "--ready-fd", str(ready_w), *extra_args]
    for f in zone_files:
        args += ["--zone", str(Path(f).resolve())]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(x for x in (root, env.get("PYTHONPATH")) if x)
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, pass_fds=(ready_w,), env=env)
    finally:
        os.close(ready_w)
        if log_file:
            out.close()
    try:
        deadline = time.monotonic() + timeout
        answer = b""
        while not answer.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([ready_r], [], [], remaining)[0]:
                proc.kill()
                raise TimeoutError(f"clusterkit dns did not listen within {timeout}s")
            chunk = os.read(ready_r, 16)
            if not chunk:
                proc.wait(5)
                raise OSError(f"clusterkit dns exited with status {proc.returncode} "
                              f"before listening (port {port} taken?)")
            answer += chunk
    finally:
        os.close(ready_r)
    proc.port = int(answer)
    return proc
