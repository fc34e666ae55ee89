"""The EPMD protocol, sans-I/O: bytes in, events and bytes out.

Nothing here opens a socket or touches asyncio. The daemon (daemon.py) and the
client (client.py) feed bytes in and write out what comes back, and the tests
drive both ends in memory.

Every request is ``Len:16`` + body, big-endian, where the body's first byte is
the request code. Replies have no length prefix: each reply has its own shape,
and NAMES/DUMP replies simply run until the daemon closes the connection.

Behaviour copied from the real epmd (OTP 25.2, measured, and erts/epmd/src/
epmd_srv.c) is marked "like epmd" below, so that what a learner sees with our
daemon is what Erlang's own daemon does.
"""
from __future__ import annotations

import re
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple, Union

# Request codes.
ALIVE2_REQ = 120      # 'x'
PORT_PLEASE2_REQ = 122  # 'z'
NAMES_REQ = 110       # 'n'
DUMP_REQ = 100        # 'd'
KILL_REQ = 107        # 'k'
STOP_REQ = 115        # 's'

# Reply codes.
ALIVE2_X_RESP = 118   # 'v': result + 32-bit creation (highest version >= 6)
ALIVE2_RESP = 121     # 'y': result + 16-bit creation (old nodes, version 5)
PORT2_RESP = 119      # 'w'

NODE_TYPE_VISIBLE = 77  # 'M', a normal Erlang node
NODE_TYPE_HIDDEN = 72   # 'H', a hidden node (C node, or erl -hidden)
PROTOCOL_TCP = 0
DIST_VERSION = 6

EPMD_DEFAULT_PORT = 4369

# Limits, like epmd (epmd_int.h): a node name is an atom, at most 255
# characters of UTF-8 (so at most 255*4 bytes), and the input buffer is
# 3*MAXSYMLEN bytes including the 2-byte length header.
MAX_NAME_CHARS = 255
MAXSYMLEN = 255 * 4
INBUF_SIZE = 3 * MAXSYMLEN
MAX_REQUEST_LEN = INBUF_SIZE - 3  # epmd rejects want = len + 2 >= INBUF_SIZE

# epmd remembers this many unregistered names, to hand a returning name a new
# creation number.
MAX_UNREG_COUNT = 1000

REQUEST_NAMES = {
    ALIVE2_REQ: "ALIVE2_REQ",
    PORT_PLEASE2_REQ: "PORT_PLEASE2_REQ",
    NAMES_REQ: "NAMES_REQ",
    DUMP_REQ: "DUMP_REQ",
    KILL_REQ: "KILL_REQ",
    STOP_REQ: "STOP_REQ",
}


class EpmdError(Exception):
    """Something went wrong talking to EPMD."""


class ProtocolError(EpmdError):
    """Bytes that do not follow the EPMD protocol.

    Raised by the client-side reply parsers. The server side returns it as an
    event instead (see ServerConnection), so the daemon can log it and close
    just that connection. Its message is always one line.
    """


def _u16(data: bytes, offset: int) -> int:
    return (data[offset] << 8) | data[offset + 1]


def _name_bytes(name: str | bytes) -> bytes:
    return name.encode("utf-8") if isinstance(name, str) else bytes(name)


def _check_name(name: str | bytes) -> bytes:
    """Encode and check a node name the way epmd will judge it."""
    raw = _name_bytes(name)
    if not raw:
        raise ValueError("an EPMD node name cannot be empty")
    if b"\x00" in raw:
        raise ValueError(f"an EPMD node name cannot contain a NUL byte: {name!r}")
    try:
        chars = len(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"an EPMD node name must be UTF-8: {name!r}") from None
    if chars > MAX_NAME_CHARS:
        raise ValueError(f"an EPMD node name has at most {MAX_NAME_CHARS} characters, "
                         f"this one has {chars}")
    return raw


# --------------------------------------------------------------------------
# What a node registers


@dataclass(frozen=True)
class NodeInfo:
    """One registration: what ALIVE2_REQ sends and PORT2_RESP returns."""

    name: str
    port: int
    node_type: int = NODE_TYPE_VISIBLE
    protocol: int = PROTOCOL_TCP
    highest_version: int = DIST_VERSION
    lowest_version: int = DIST_VERSION
    extra: bytes = b""

    @property
    def hidden(self) -> bool:
        return self.node_type == NODE_TYPE_HIDDEN

    @classmethod
    def create(cls, name: str, port: int, *, hidden: bool = False, extra: bytes = b"") -> "NodeInfo":
        return cls(name=name, port=port,
                   node_type=NODE_TYPE_HIDDEN if hidden else NODE_TYPE_VISIBLE,
                   extra=bytes(extra))


# --------------------------------------------------------------------------
# Request encoders (client side)


def _frame(body: bytes) -> bytes:
    if not 1 <= len(body) <= MAX_REQUEST_LEN:
        raise ValueError(f"an EPMD request body is 1..{MAX_REQUEST_LEN} bytes, not {len(body)}")
    return struct.pack(">H", len(body)) + body


def encode_alive2_req(node: NodeInfo) -> bytes:
    name = _check_name(node.name)
    if len(node.extra) > MAXSYMLEN:
        raise ValueError(f"EPMD extra data is at most {MAXSYMLEN} bytes")
    body = (struct.pack(">BHBBHHH", ALIVE2_REQ, node.port, node.node_type, node.protocol,
                        node.highest_version, node.lowest_version, len(name))
            + name + struct.pack(">H", len(node.extra)) + node.extra)
    return _frame(body)


def encode_port_please2_req(name: str) -> bytes:
    return _frame(bytes([PORT_PLEASE2_REQ]) + _check_name(name))


def encode_names_req() -> bytes:
    return _frame(bytes([NAMES_REQ]))


def encode_dump_req() -> bytes:
    return _frame(bytes([DUMP_REQ]))


def encode_kill_req() -> bytes:
    return _frame(bytes([KILL_REQ]))


def encode_stop_req(name: str) -> bytes:
    return _frame(bytes([STOP_REQ]) + _check_name(name))


# --------------------------------------------------------------------------
# Reply encoders (server side)


def encode_alive2_x_resp(result: int, creation: int) -> bytes:
    return struct.pack(">BBI", ALIVE2_X_RESP, result, creation & 0xFFFFFFFF)


def encode_alive2_resp(result: int, creation: int) -> bytes:
    """The pre-OTP-23 reply, sent to nodes whose highest version is below 6."""
    return struct.pack(">BBH", ALIVE2_RESP, result, creation & 0xFFFF)


def encode_port2_resp(node: NodeInfo | None) -> bytes:
    if node is None:
        return bytes([PORT2_RESP, 1])
    name = _name_bytes(node.name)
    return (struct.pack(">BBHBBHHH", PORT2_RESP, 0, node.port, node.node_type, node.protocol,
                        node.highest_version, node.lowest_version, len(name))
            + name + struct.pack(">H", len(node.extra)) + node.extra)


def encode_names_resp(epmd_port: int, nodes) -> bytes:
    """`nodes` are NodeInfo or (name, port) pairs, newest first like epmd."""
    out = [struct.pack(">I", epmd_port)]
    for node in nodes:
        name, port = (node.name, node.port) if isinstance(node, NodeInfo) else node
        out.append(b"name " + _name_bytes(name) + b" at port %d\n" % port)
    return b"".join(out)


def encode_dump_resp(epmd_port: int, active, unused=()) -> bytes:
    """`active`/`unused` are (name, port, fd) triples. Each line ends in NUL, like epmd."""
    out = [struct.pack(">I", epmd_port)]
    for name, port, fd in active:
        out.append(b"active name     <" + _name_bytes(name) + b"> at port %d, fd = %d\n\x00" % (port, fd))
    for name, port, fd in unused:
        out.append(b"old/unused name <" + _name_bytes(name) + b">, port = %d, fd = %d \n\x00" % (port, fd))
    return b"".join(out)


def encode_kill_resp(ok: bool) -> bytes:
    return b"OK" if ok else b"NO"


def encode_stop_resp(stopped: bool) -> bytes:
    return b"STOPPED" if stopped else b"NOEXIST"


# --------------------------------------------------------------------------
# Parsed requests (server side)


@dataclass(frozen=True)
class Alive2Request:
    node: NodeInfo
    # Set when epmd would answer result 1 rather than drop the connection
    # (name too long, not UTF-8, extra too long): the reason, for the log.
    invalid: str | None = None


@dataclass(frozen=True)
class PortPlease2Request:
    name: str


@dataclass(frozen=True)
class NamesRequest:
    pass


@dataclass(frozen=True)
class DumpRequest:
    pass


@dataclass(frozen=True)
class KillRequest:
    pass


@dataclass(frozen=True)
class StopRequest:
    name: bytes  # raw, because it is only compared against registered names


Request = Union[Alive2Request, PortPlease2Request, NamesRequest, DumpRequest, KillRequest, StopRequest]


def parse_request(body: bytes) -> Request:
    """Parse one request body (without its length header), judging it like epmd.

    Raises ProtocolError for what epmd drops silently (it closes the connection).
    """
    if not body:
        raise ProtocolError("empty request")
    code = body[0]
    if code == ALIVE2_REQ:
        return _parse_alive2(body)
    if code == PORT_PLEASE2_REQ:
        raw = body[1:]
        if raw.endswith(b"\x00"):  # like epmd: a trailing NUL terminator is allowed
            raw = raw[:-1]
        if not raw:
            raise ProtocolError("PORT_PLEASE2_REQ without a node name")
        if b"\x00" in raw:
            raise ProtocolError("PORT_PLEASE2_REQ node name contains a NUL byte")
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("PORT_PLEASE2_REQ node name is not valid UTF-8") from None
        if len(name) > MAX_NAME_CHARS:
            raise ProtocolError(f"PORT_PLEASE2_REQ node name is longer than {MAX_NAME_CHARS} characters")
        return PortPlease2Request(name)
    # Like epmd, the rest of a NAMES/DUMP/KILL body is ignored.
    if code == NAMES_REQ:
        return NamesRequest()
    if code == DUMP_REQ:
        return DumpRequest()
    if code == KILL_REQ:
        return KillRequest()
    if code == STOP_REQ:
        if len(body) <= 1:
            raise ProtocolError("STOP_REQ without a node name")
        # epmd reads the name as a C string: it ends at the first NUL.
        return StopRequest(body[1:].split(b"\x00", 1)[0])
    raise ProtocolError(f"unknown request code {code}")


def _parse_alive2(body: bytes) -> Alive2Request:
    # Header: code, port:16, type:8, proto:8, high:16, low:16, nlen:16 = 11 bytes,
    # then name, then elen:16 and extra.  Like epmd, the body must hold at least
    # one name byte and the extra length (more than 13 bytes).
    if len(body) <= 13:
        raise ProtocolError(f"ALIVE2_REQ too short ({len(body)} bytes)")
    _, port, node_type, protocol, high, low, nlen = struct.unpack_from(">BHBBHHH", body)
    if 13 + nlen > len(body):
        raise ProtocolError(f"ALIVE2_REQ name length {nlen} runs past the end of the request")
    raw_name = body[11:11 + nlen]
    elen = _u16(body, 11 + nlen)
    if 13 + nlen + elen > len(body):
        raise ProtocolError(f"ALIVE2_REQ extra length {elen} runs past the end of the request")
    if not raw_name:
        # Real epmd registers "" when a stray byte pads the body, and then lists
        # "name  at port N", which its own clients cannot parse. We refuse it.
        raise ProtocolError("ALIVE2_REQ with an empty node name")
    if b"\x00" in raw_name:
        raise ProtocolError("ALIVE2_REQ node name contains a NUL byte")
    extra = body[13 + nlen:13 + nlen + elen]
    # What follows is answered with result 1, like epmd, not dropped.
    invalid = None
    try:
        name = raw_name.decode("utf-8")
    except UnicodeDecodeError:
        name = raw_name.decode("utf-8", "backslashreplace")
        invalid = "invalid node name encoding (not UTF-8)"
    if invalid is None and (nlen > MAXSYMLEN or len(name) > MAX_NAME_CHARS):
        invalid = f"node name is too long ({len(name)} characters, at most {MAX_NAME_CHARS})"
    if invalid is None and elen > MAXSYMLEN:
        invalid = f"extra data is too long ({elen} bytes, at most {MAXSYMLEN})"
    node = NodeInfo(name=name, port=port, node_type=node_type, protocol=protocol,
                    highest_version=high, lowest_version=low, extra=bytes(extra))
    return Alive2Request(node, invalid)


# --------------------------------------------------------------------------
# Client-side reply parsers. Each takes bytes in any split, down to one byte
# at a time.


class Alive2Reply(NamedTuple):
    result: int
    creation: int
    extended: bool  # True for ALIVE2_X_RESP (32-bit creation)


class NamesReply(NamedTuple):
    port: int
    nodes: list  # [(name, port)], in the daemon's order (newest first)


class DumpReply(NamedTuple):
    port: int
    lines: list  # the text of each entry, without its NUL


class _ReplyParser:
    """Base: `receive_data` returns True once the reply is complete; then `.result`."""

    what = "reply"

    def __init__(self):
        self._buf = bytearray()
        self.done = False
        self._result = None

    @property
    def result(self):
        if not self.done:
            raise ProtocolError(f"the {self.what} is not complete yet")
        return self._result

    def receive_data(self, data: bytes) -> bool:
        if self.done:
            if data:
                raise ProtocolError(f"{len(data)} unexpected bytes after the {self.what}")
            return True
        self._buf += data
        self._try_parse()
        return self.done

    def receive_eof(self):
        """The daemon closed the connection: finish the reply or fail clearly."""
        if not self.done:
            self._at_eof()
        return self.result

    def _finish(self, result, used: int):
        extra = len(self._buf) - used
        if extra:
            raise ProtocolError(f"{extra} unexpected bytes after the {self.what}")
        self._result = result
        self.done = True

    def _try_parse(self):
        raise NotImplementedError

    def _at_eof(self):
        raise ProtocolError(f"EPMD closed the connection after {len(self._buf)} bytes "
                            f"of an incomplete {self.what}")


class Alive2ReplyParser(_ReplyParser):
    what = "ALIVE2 reply"

    def _try_parse(self):
        buf = self._buf
        if not buf:
            return
        if buf[0] == ALIVE2_X_RESP:
            if len(buf) >= 6:
                result, creation = struct.unpack_from(">BI", buf, 1)
                self._finish(Alive2Reply(result, creation, True), 6)
        elif buf[0] == ALIVE2_RESP:
            if len(buf) >= 4:
                result, creation = struct.unpack_from(">BH", buf, 1)
                self._finish(Alive2Reply(result, creation, False), 4)
        else:
            raise ProtocolError(f"expected an ALIVE2 reply (118 or 121), got code {buf[0]}")


class Port2ReplyParser(_ReplyParser):
    """Result: a NodeInfo, or None when EPMD does not know the name."""

    what = "PORT2 reply"

    def _try_parse(self):
        buf = self._buf
        if not buf:
            return
        if buf[0] != PORT2_RESP:
            raise ProtocolError(f"expected a PORT2 reply (119), got code {buf[0]}")
        if len(buf) < 2:
            return
        if buf[1] != 0:
            self._finish(None, 2)
            return
        if len(buf) < 12:
            return
        _, _, port, node_type, protocol, high, low, nlen = struct.unpack_from(">BBHBBHHH", buf)
        if len(buf) < 14 + nlen:
            return
        elen = _u16(buf, 12 + nlen)
        end = 14 + nlen + elen
        if len(buf) < end:
            return
        try:
            name = bytes(buf[12:12 + nlen]).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("PORT2 reply node name is not valid UTF-8") from None
        self._finish(NodeInfo(name, port, node_type, protocol, high, low, bytes(buf[14 + nlen:end])), end)


_NAME_LINE = re.compile(rb"name (.*) at port (\d+)")


class NamesReplyParser(_ReplyParser):
    """NAMES runs until EOF: Port:32, then `name %s at port %d\\n` lines."""

    what = "NAMES reply"

    def _try_parse(self):
        pass  # only complete at EOF

    def _at_eof(self):
        buf = bytes(self._buf)
        if len(buf) < 4:
            raise ProtocolError(f"EPMD closed the connection after {len(buf)} bytes "
                                f"of a NAMES reply (it needs at least 4)")
        port = struct.unpack_from(">I", buf)[0]
        text = buf[4:]
        if text and not text.endswith(b"\n"):
            raise ProtocolError("NAMES reply does not end with a newline")
        nodes = []
        for line in text.split(b"\n")[:-1]:
            m = _NAME_LINE.fullmatch(line)
            if m is None:
                raise ProtocolError(f"unexpected line in NAMES reply: {line[:80]!r}")
            try:
                nodes.append((m.group(1).decode("utf-8"), int(m.group(2))))
            except UnicodeDecodeError:
                raise ProtocolError(f"NAMES reply name is not UTF-8: {m.group(1)[:80]!r}") from None
        self._finish(NamesReply(port, nodes), len(buf))


class DumpReplyParser(_ReplyParser):
    """DUMP runs until EOF: Port:32, then NUL-terminated text entries."""

    what = "DUMP reply"

    def _try_parse(self):
        pass

    def _at_eof(self):
        buf = bytes(self._buf)
        if len(buf) < 4:
            raise ProtocolError(f"EPMD closed the connection after {len(buf)} bytes "
                                f"of a DUMP reply (it needs at least 4)")
        port = struct.unpack_from(">I", buf)[0]
        parts = buf[4:].split(b"\x00")
        if parts[-1]:
            raise ProtocolError("DUMP reply does not end with a NUL byte")
        lines = [p.decode("utf-8", "replace").rstrip("\n") for p in parts[:-1]]
        self._finish(DumpReply(port, lines), len(buf))


class KillReplyParser(_ReplyParser):
    """Result: "OK" (the daemon stops) or "NO" (refused: nodes are registered).

    A daemon that closes early gives whatever it sent (possibly ""), which
    `epmd -kill` reports as "local epmd responded with <...>".
    """

    what = "KILL reply"

    def _try_parse(self):
        if len(self._buf) >= 2:
            self._finish(bytes(self._buf[:2]).decode("latin-1"), 2)

    def _at_eof(self):
        self._finish(bytes(self._buf).decode("latin-1"), len(self._buf))


class StopReplyParser(_ReplyParser):
    """Result: "STOPPED", "NOEXIST", or "" when the daemon closes without a word.

    Real epmd refuses STOP_REQ silently unless it runs with
    -relaxed_command_check. Only the first 7 bytes count, like `epmd -stop`:
    OTP 25's epmd sends "NOEXISTSTOPPED" for an unknown name.
    """

    what = "STOP reply"

    def receive_data(self, data: bytes) -> bool:
        if self.done:
            return True  # tolerate OTP 25's trailing "STOPPED"
        return super().receive_data(data)

    def _try_parse(self):
        if len(self._buf) >= 7:
            self._result = bytes(self._buf[:7]).decode("latin-1")
            self.done = True

    def _at_eof(self):
        self._finish(bytes(self._buf).decode("latin-1"), len(self._buf))


# --------------------------------------------------------------------------
# Server side: the registry and one connection's state machine.


class Registry:
    """Registered nodes, name -> NodeInfo, with epmd's creation numbers.

    Like epmd: a new name starts its counter at the current Unix time, a name
    that comes back gets the previous counter + 1, and a counter never goes
    below 4 (so a creation is never 0 and never one of the old 1..3 values).
    Names are listed newest first, the order epmd's NAMES reply uses.
    """

    def __init__(self, clock=time.time):
        self._clock = clock
        self._nodes: dict[str, tuple[NodeInfo, int, object]] = {}  # name -> (node, creation, owner)
        # Counters of unregistered names, oldest first, at most MAX_UNREG_COUNT.
        self._unused: OrderedDict[str, tuple[NodeInfo, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, name: str) -> bool:
        return name in self._nodes

    def lookup(self, name: str) -> NodeInfo | None:
        entry = self._nodes.get(name)
        return entry[0] if entry else None

    def creation_of(self, name: str) -> int | None:
        entry = self._nodes.get(name)
        return entry[1] if entry else None

    def nodes(self) -> list[NodeInfo]:
        """Registered nodes, newest first."""
        return [node for node, _, _ in reversed(self._nodes.values())]

    def unused(self) -> list[NodeInfo]:
        """Names seen before and now gone, oldest first (what DUMP shows)."""
        return [node for node, _ in self._unused.values()]

    def owner_of(self, name: str):
        entry = self._nodes.get(name)
        return entry[2] if entry else None

    def register(self, node: NodeInfo, owner=None) -> int | None:
        """Register `node`; return its creation, or None if the name is taken."""
        if node.name in self._nodes:
            return None
        previous = self._unused.pop(node.name, None)
        counter = previous[1] if previous else int(self._clock())
        counter = (counter + 1) & 0xFFFFFFFF
        if counter < 4:
            counter = 4
        self._nodes[node.name] = (node, counter, owner)
        return counter

    @staticmethod
    def wire_creation(node: NodeInfo, counter: int) -> int:
        """The creation the node is told: old (version 5) nodes get 1..3, like epmd."""
        return counter if node.highest_version >= 6 else counter % 3 + 1

    def unregister(self, name: str) -> NodeInfo | None:
        entry = self._nodes.pop(name, None)
        if entry is None:
            return None
        node, counter, _ = entry
        self._unused[name] = (node, counter)
        while len(self._unused) > MAX_UNREG_COUNT:
            self._unused.popitem(last=False)
        return node

    def unregister_owner(self, owner) -> NodeInfo | None:
        for name, (_, _, who) in list(self._nodes.items()):
            if who is owner:
                return self.unregister(name)
        return None


# Events a ServerConnection returns. ProtocolError instances are events too.


@dataclass(frozen=True)
class Send:
    """Write these bytes to the peer."""
    data: bytes


@dataclass(frozen=True)
class Close:
    """Close this connection (after writing what came before)."""


@dataclass(frozen=True)
class Shutdown:
    """A KILL_REQ was accepted: the daemon stops serving and exits."""


@dataclass(frozen=True)
class Registered:
    node: NodeInfo
    creation: int


@dataclass(frozen=True)
class Unregistered:
    node: NodeInfo


@dataclass(frozen=True)
class Evict:
    """STOP_REQ unregistered a node: close that node's own connection."""
    owner: object
    node: NodeInfo


@dataclass(frozen=True)
class Notice:
    """Something the daemon should log that is not a protocol error (one line)."""
    message: str


Event = Union[Send, Close, Shutdown, Registered, Unregistered, Evict, Notice, ProtocolError]


@dataclass(eq=False)  # identity matters: the registry knows a connection as its owner
class ServerConnection:
    """One accepted connection to the daemon.

    Feed it bytes with receive_data(); it returns a list of events in the order
    they must be acted on. A connection carries one request. After a successful
    ALIVE2_REQ it stays open, and the node stays registered until it closes,
    like epmd.

    `local_peer` says whether the peer is on this host: like epmd, ALIVE2, DUMP,
    KILL and STOP are only accepted from local peers. `relaxed` is epmd's
    -relaxed_command_check: KILL works with nodes registered, and STOP works.
    """

    registry: Registry
    epmd_port: int = EPMD_DEFAULT_PORT
    local_peer: bool = True
    relaxed: bool = False
    _buf: bytearray = field(default_factory=bytearray, repr=False)
    _want: int | None = field(default=None, repr=False)  # body length, once known
    state: str = "request"  # request -> (alive | closed)

    @property
    def registered(self) -> NodeInfo | None:
        """The node this connection registered, while it is registered."""
        for node in self.registry.nodes():
            if self.registry.owner_of(node.name) is self:
                return node
        return None

    def receive_data(self, data: bytes) -> list:
        if self.state == "closed" or not data:
            return []
        if self.state == "alive":
            # Like epmd: a registered node's connection must stay silent. Any
            # byte unregisters the node and closes the connection.
            return self._fail(f"{len(data)} unexpected bytes after ALIVE2_REQ (a registration "
                              f"connection must stay silent)")
        self._buf += data
        if self._want is None:
            if len(self._buf) < 2:
                return []
            self._want = _u16(self._buf, 0)
            if not 1 <= self._want <= MAX_REQUEST_LEN:
                return self._fail(f"invalid request length {self._want} "
                                  f"(EPMD accepts 1..{MAX_REQUEST_LEN})")
        have = len(self._buf) - 2
        if have < self._want:
            return []
        if have > self._want:
            # Like epmd: one request per connection; more bytes are an error.
            return self._fail(f"{have - self._want} unexpected bytes after a "
                              f"{self._want}-byte request")
        body = bytes(self._buf[2:])
        self._buf.clear()
        try:
            request = parse_request(body)
        except ProtocolError as err:
            return self._fail(str(err))
        return self._handle(request)

    def receive_eof(self) -> list:
        """The peer closed its side (or the connection is gone)."""
        if self.state == "closed":
            return []
        if self.state == "alive":
            self.state = "closed"
            node = self.registry.unregister_owner(self)
            return ([Unregistered(node)] if node else []) + [Close()]
        if self._buf:
            return self._fail(f"connection closed after {len(self._buf)} bytes of an "
                              f"incomplete request")
        self.state = "closed"
        return [Close()]

    def connection_lost(self) -> list:
        """The transport is gone for any reason: drop a registration it held."""
        self.state = "closed"
        node = self.registry.unregister_owner(self)
        return [Unregistered(node)] if node else []

    def _fail(self, message: str) -> list:
        self.state = "closed"
        events: list = [ProtocolError(message)]
        node = self.registry.unregister_owner(self)
        if node is not None:
            events.append(Unregistered(node))
        events.append(Close())
        return events

    def _refuse(self, message: str) -> list:
        self.state = "closed"
        return [Notice(message), Close()]

    def _handle(self, request: Request) -> list:
        reg = self.registry
        if isinstance(request, Alive2Request):
            if not self.local_peer:
                return self._refuse("ALIVE2_REQ from a non-local address refused")
            node = request.node
            counter = None if request.invalid else reg.register(node, owner=self)
            # Like epmd, the connection stays open even after a refusal.
            self.state = "alive"
            if counter is None:
                why = request.invalid or f"node name already occupied {node.name}"
                reply = (encode_alive2_x_resp(1, 99) if node.highest_version >= 6
                         else encode_alive2_resp(1, 99))
                return [Send(reply), Notice(why)]
            creation = Registry.wire_creation(node, counter)
            reply = (encode_alive2_x_resp(0, creation) if node.highest_version >= 6
                     else encode_alive2_resp(0, creation))
            return [Send(reply), Registered(node, creation)]

        self.state = "closed"
        if isinstance(request, PortPlease2Request):
            return [Send(encode_port2_resp(reg.lookup(request.name))), Close()]
        if isinstance(request, NamesRequest):
            return [Send(encode_names_resp(self.epmd_port, reg.nodes())), Close()]
        if isinstance(request, DumpRequest):
            if not self.local_peer:
                return self._refuse("DUMP_REQ from a non-local address refused")
            # We have no file descriptors to show; -1 says so.
            active = [(n.name, n.port, -1) for n in reg.nodes()]
            unused = [(n.name, n.port, -1) for n in reg.unused()]
            return [Send(encode_dump_resp(self.epmd_port, active, unused)), Close()]
        if isinstance(request, KillRequest):
            if not self.local_peer:
                return self._refuse("KILL_REQ from a non-local address refused")
            if len(reg) and not self.relaxed:
                # Like epmd without -relaxed_command_check.
                return [Send(encode_kill_resp(False)),
                        Notice(f"KILL_REQ refused: {len(reg)} node(s) still registered"),
                        Close()]
            return [Send(encode_kill_resp(True)), Close(), Shutdown()]
        if isinstance(request, StopRequest):
            if not self.local_peer:
                return self._refuse("STOP_REQ from a non-local address refused")
            if not self.relaxed:
                # Like epmd: refused without a reply.
                return self._refuse("STOP_REQ refused: the daemon does not run with "
                                    "relaxed command checks")
            try:
                name = request.name.decode("utf-8")
            except UnicodeDecodeError:
                name = None
            owner = reg.owner_of(name) if name is not None and name in reg else None
            if name is None or name not in reg:
                # OTP 25.2's epmd sends "NOEXISTSTOPPED" here, a bug fixed later.
                return [Send(encode_stop_resp(False)), Close()]
            node = reg.unregister(name)
            return [Unregistered(node), Evict(owner, node), Send(encode_stop_resp(True)), Close()]
        raise AssertionError(request)  # parse_request returns only the types above
