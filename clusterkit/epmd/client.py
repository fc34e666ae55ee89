"""asyncio client for EPMD: ours or Erlang's, the wire is the same.

Every network wait has a timeout, so a daemon that accepts and then says
nothing cannot hang a lesson cell.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os

from . import protocol as p
from .protocol import EpmdError, NodeInfo, ProtocolError

DEFAULT_TIMEOUT = 5.0


class EpmdUnavailable(EpmdError, ConnectionError):
    """Nothing accepts connections on the EPMD port, or it does not answer."""


class EpmdNoReply(EpmdUnavailable):
    """EPMD accepted the connection but did not answer in time, or dropped it."""


class NameInUse(EpmdError):
    """EPMD refused an ALIVE2 registration (result != 0)."""


def default_port() -> int:
    """ERL_EPMD_PORT if set, else 4369: the port `erl` itself would use."""
    value = os.environ.get("ERL_EPMD_PORT", "").strip()
    if not value:
        return p.EPMD_DEFAULT_PORT
    try:
        port = int(value)
    except ValueError:
        raise EpmdError(f"ERL_EPMD_PORT must be a port number, not {value!r}") from None
    if not 0 < port < 65536:
        raise EpmdError(f"ERL_EPMD_PORT must be a port number, not {value!r}")
    return port


async def _connect(host: str, epmd_port: int, timeout: float):
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, epmd_port), timeout)
    except asyncio.TimeoutError:
        raise EpmdUnavailable(f"EPMD on {host}:{epmd_port} did not accept a connection "
                              f"within {timeout}s") from None
    except OSError as err:
        raise EpmdUnavailable(f"no EPMD is listening on {host}:{epmd_port} "
                              f"({err.strerror or err}); start one with `clusterkit epmd` "
                              f"or `epmd -daemon`") from None


async def _read_reply(reader: asyncio.StreamReader, parser, what: str, where: str,
                      timeout: float, *, until_eof: bool = False):
    """Feed the parser until the reply is complete (or EOF), within `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise EpmdNoReply(f"EPMD on {where} did not answer {what} within {timeout}s")
        try:
            # One byte is enough to learn a reply is done, but read in chunks.
            data = await asyncio.wait_for(reader.read(4096), remaining)
        except asyncio.TimeoutError:
            raise EpmdNoReply(f"EPMD on {where} did not answer {what} within {timeout}s") from None
        except OSError as err:
            raise EpmdNoReply(f"EPMD on {where} dropped the connection during {what}: {err}") from None
        if not data:
            return parser.receive_eof()
        if parser.receive_data(data) and not until_eof:
            return parser.result


async def _drain(writer, where: str, what: str, timeout: float):
    try:
        await asyncio.wait_for(writer.drain(), timeout)
    except asyncio.TimeoutError:
        raise EpmdNoReply(f"EPMD on {where} did not take {what} within {timeout}s") from None
    except OSError as err:
        raise EpmdNoReply(f"EPMD on {where} dropped the connection during {what}: {err}") from None


async def _one_shot(host, epmd_port, request: bytes, parser, what: str, timeout: float,
                    *, until_eof: bool = False):
    """Send one request on a fresh connection and parse its reply."""
    reader, writer = await _connect(host, epmd_port, timeout)
    try:
        writer.write(request)
        await _drain(writer, f"{host}:{epmd_port}", what, timeout)
        return await _read_reply(reader, parser, what, f"{host}:{epmd_port}", timeout,
                                 until_eof=until_eof)
    finally:
        writer.close()


class _Closing:
    """What Registration.close() returns: the close has happened; awaiting it
    also waits for the socket to finish closing. Not awaiting it is fine."""

    def __init__(self, writer: asyncio.StreamWriter):
        self._writer = writer

    def __await__(self):
        async def wait():
            try:
                await self._writer.wait_closed()
            except OSError:
                pass  # already reset by the peer: closed all the same
        return wait().__await__()


class Registration:
    """A live ALIVE2 registration. The node is registered while this TCP
    connection stays open; close() unregisters it."""

    def __init__(self, node: NodeInfo, creation: int, epmd_port: int, host: str,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.node = node
        self.creation = creation
        self.epmd_port = epmd_port
        self.host = host
        self._reader = reader
        self._writer = writer

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def port(self) -> int:
        return self.node.port

    @property
    def closed(self) -> bool:
        return self._writer.is_closing()

    def close(self) -> _Closing:
        """Unregister now. `reg.close()` and `await reg.close()` both work."""
        self._writer.close()
        return _Closing(self._writer)

    async def aclose(self) -> None:
        await self.close()

    async def wait_closed(self) -> None:
        """Return when the EPMD connection ends, e.g. because EPMD was killed."""
        try:
            while await self._reader.read(4096):
                pass  # EPMD sends nothing after the reply; ignore it if it does
        except OSError:
            pass

    async def __aenter__(self) -> "Registration":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (f"<Registration {self.node.name!r} port={self.node.port} "
                f"creation={self.creation} epmd={self.host}:{self.epmd_port} {state}>")


async def register(name: str, port: int, *, hidden: bool = False, epmd_port: int | None = None,
                   host: str = "127.0.0.1", extra: bytes = b"",
                   timeout: float = DEFAULT_TIMEOUT) -> Registration:
    """Register `name` (the part before the @) as listening on `port`.

    Sends ALIVE2_REQ with versions 6/6, like OTP 23 and later. Keep the
    returned Registration: the name stays registered while it is open.
    """
    epmd_port = default_port() if epmd_port is None else epmd_port
    node = NodeInfo.create(name, port, hidden=hidden, extra=extra)
    request = p.encode_alive2_req(node)  # ValueError for a name EPMD would refuse
    reader, writer = await _connect(host, epmd_port, timeout)
    try:
        writer.write(request)
        await _drain(writer, f"{host}:{epmd_port}", "ALIVE2_REQ", timeout)
        reply = await _read_reply(reader, p.Alive2ReplyParser(), "ALIVE2_REQ",
                                  f"{host}:{epmd_port}", timeout)
    except BaseException:
        writer.close()
        raise
    if reply.result != 0:
        writer.close()
        hint = ""
        if host not in ("127.0.0.1", "localhost", "::1"):
            hint = (f" (asked at {host}). clusterkit's EPMD keeps one registry per loopback address, so "
                    f"{name}@{host} can share its name with nodes on other addresses; Erlang's "
                    f"own epmd keeps one registry per machine. Fix: stop that epmd and let "
                    f"clusterkit start its own, or run one `epmd -address {host} -port "
                    f"{epmd_port}` per address, or give each node its own name")
        raise NameInUse(f"name {name!r} is already registered with EPMD on port "
                        f"{epmd_port}{hint}")
    return Registration(node, reply.creation, epmd_port, host, reader, writer)


async def port_please(host: str, name: str, epmd_port: int | None = None, *,
                      timeout: float = DEFAULT_TIMEOUT) -> NodeInfo | None:
    """Where does node `name` listen on `host`? None if EPMD does not know it."""
    epmd_port = default_port() if epmd_port is None else epmd_port
    return await _one_shot(host, epmd_port, p.encode_port_please2_req(name),
                           p.Port2ReplyParser(), "PORT_PLEASE2_REQ", timeout)


async def names(host: str = "127.0.0.1", epmd_port: int | None = None, *,
                timeout: float = DEFAULT_TIMEOUT) -> p.NamesReply:
    """(epmd_port, [(name, port), ...]) as EPMD lists them, newest first."""
    epmd_port = default_port() if epmd_port is None else epmd_port
    return await _one_shot(host, epmd_port, p.encode_names_req(), p.NamesReplyParser(),
                           "NAMES_REQ", timeout, until_eof=True)


async def dump(host: str = "127.0.0.1", epmd_port: int | None = None, *,
               timeout: float = DEFAULT_TIMEOUT) -> p.DumpReply:
    epmd_port = default_port() if epmd_port is None else epmd_port
    return await _one_shot(host, epmd_port, p.encode_dump_req(), p.DumpReplyParser(),
                           "DUMP_REQ", timeout, until_eof=True)


async def kill(host: str = "127.0.0.1", epmd_port: int | None = None, *,
               timeout: float = DEFAULT_TIMEOUT) -> str:
    """Ask EPMD to exit. "OK" if it does, "NO" if it refuses (nodes are still
    registered and it does not run with relaxed command checks)."""
    epmd_port = default_port() if epmd_port is None else epmd_port
    return await _one_shot(host, epmd_port, p.encode_kill_req(), p.KillReplyParser(),
                           "KILL_REQ", timeout)


async def stop(name: str, host: str = "127.0.0.1", epmd_port: int | None = None, *,
               timeout: float = DEFAULT_TIMEOUT) -> str:
    """Unregister someone else's node: "STOPPED", "NOEXIST", or "" if refused."""
    epmd_port = default_port() if epmd_port is None else epmd_port
    return await _one_shot(host, epmd_port, p.encode_stop_req(name), p.StopReplyParser(),
                           "STOP_REQ", timeout)


def _run_sync(coro):
    """Run a coroutine from plain code, even where a loop already runs in this
    thread (a Jupyter kernel): then it runs on a short-lived helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def names_sync(host: str = "127.0.0.1", epmd_port: int | None = None, *,
               timeout: float = DEFAULT_TIMEOUT) -> p.NamesReply:
    return _run_sync(names(host, epmd_port, timeout=timeout))


def kill_sync(host: str = "127.0.0.1", epmd_port: int | None = None, *,
              timeout: float = DEFAULT_TIMEOUT) -> str:
    return _run_sync(kill(host, epmd_port, timeout=timeout))


def port_please_sync(host: str, name: str, epmd_port: int | None = None, *,
                     timeout: float = DEFAULT_TIMEOUT) -> NodeInfo | None:
    return _run_sync(port_please(host, name, epmd_port, timeout=timeout))


__all__ = [
    "EpmdError", "EpmdUnavailable", "EpmdNoReply", "NameInUse", "ProtocolError", "Registration",
    "default_port", "register", "port_please", "names", "dump", "kill", "stop",
    "names_sync", "kill_sync", "port_please_sync",
]
