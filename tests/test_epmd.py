"""EPMD: the sans-I/O protocol, our daemon and client, and the real epmd as oracle.

Where the real `epmd` is installed, it is the judge: the same requests go to it
and to our daemon, and the bytes that come back must match.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import free_port, port_open, requires_erlang, wait_for

from clusterkit import epmd
from clusterkit.epmd import protocol as p
from clusterkit.epmd.daemon import EpmdDaemon
from clusterkit.epmd.protocol import NodeInfo, ProtocolError, Registry, ServerConnection

erlang = pytest.mark.erlang


def needs_erlang(f):
    return requires_erlang(erlang(f))


# Replies captured from the real epmd (OTP 25.2) for: a registered as visible
# on port 40000; b as hidden on port 40001 with extra b"xy"; epmd on 38947.
REAL_PORT2_A = bytes.fromhex("77009c404d00000600060001610000")
REAL_PORT2_B = bytes.fromhex("77009c4148000006000600016200027879")
REAL_PORT2_NONE = bytes.fromhex("7701")
REAL_NAMES = b"\x00\x00\x98#name b at port 40001\nname a at port 40000\n"
REAL_ALIVE2_TAKEN = bytes.fromhex("760100000063")


# --------------------------------------------------------------------------
# helpers


def splits(data: bytes):
    """Every way to cut `data` in two, and one byte at a time."""
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]
    yield [data[i:i + 1] for i in range(len(data))]


def feed(parser, chunks, eof=False):
    for chunk in chunks:
        parser.receive_data(chunk)
    if eof:
        return parser.receive_eof()
    assert parser.done
    return parser.result


def read_to_eof(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            data = sock.recv(4096)  # the socket timeout bounds the wait
        except ConnectionResetError:
            data = b""
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        data = sock.recv(n - len(out))
        if not data:
            break
        out += data
    return out


def exchange(port: int, data: bytes, *, half_close: bool = False) -> bytes:
    """Send raw bytes on a fresh connection; everything until the daemon closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        return read_to_eof(s)


def raw_register(port: int, node: NodeInfo):
    """ALIVE2 on a raw socket; returns (socket, reply). Keep the socket open."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(p.encode_alive2_req(node))
    reply = recv_exact(s, 6 if node.highest_version >= 6 else 4)
    return s, reply


def raw_names(port: int) -> bytes:
    return exchange(port, p.encode_names_req())


def listed(port: int) -> list:
    return epmd.names_sync("127.0.0.1", port).nodes


def start_real_epmd(procs, port=None, relaxed=False):
    port = port or free_port()
    args = ["epmd", "-port", str(port)] + (["-relaxed_command_check"] if relaxed else [])
    proc = procs.start(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: port_open(port), what="epmd to listen")
    return port, proc


def start_our_epmd(procs, port=None, *extra):
    port = port or free_port()
    proc = procs.start([sys.executable, "-m", "clusterkit", "epmd", "--port", str(port), *extra],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: port_open(port) or proc.poll() is not None, what="clusterkit epmd to listen")
    assert proc.poll() is None, proc.communicate()
    return port, proc


def cli(*args, env=None):
    """Run a command line and return (stdout, stderr, status)."""
    r = subprocess.run(list(args), capture_output=True, timeout=30,
                       env={**os.environ, **(env or {})})
    return r.stdout, r.stderr, r.returncode


def ours(port, *args):
    return cli(sys.executable, "-m", "clusterkit", "epmd", "--port", str(port), *args)


class ThreadDaemon:
    """Our daemon in this process, on its own event loop thread, on 127.0.0.1."""

    def __init__(self, **kw):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.daemon = EpmdDaemon(0, "127.0.0.1", **kw)
        self._call(self.daemon.start())
        self.port = self.daemon.port

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def registered(self) -> list:
        async def names():
            return [n.name for n in self.daemon.registry.nodes()]
        return self._call(names())

    def stop(self):
        async def stop():
            self.daemon.close()
            await self.daemon.wait_closed()
        self._call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def daemon():
    d = ThreadDaemon()
    yield d
    d.stop()


def daemon_pids(port: int) -> list[int]:
    """Our daemons serving `port`, found through /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and b"clusterkit" in argv and b"epmd" in argv and str(port).encode() in argv:
            pids.append(int(entry))
    return pids


def kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --------------------------------------------------------------------------
# sans-I/O: requests


def test_alive2_request_bytes():
    node = NodeInfo.create("a", 40000)
    body = b"x" + struct.pack(">HBBHHH", 40000, 77, 0, 6, 6, 1) + b"a" + b"\x00\x00"
    assert p.encode_alive2_req(node) == struct.pack(">H", len(body)) + body
    hidden = NodeInfo.create("b", 40001, hidden=True, extra=b"xy")
    assert hidden.hidden and not node.hidden
    assert p.encode_alive2_req(hidden)[5] == 72  # 'H'
    assert p.encode_alive2_req(hidden).endswith(b"b\x00\x02xy")


def test_one_shot_request_bytes():
    assert p.encode_port_please2_req("a") == b"\x00\x02za"
    assert p.encode_names_req() == b"\x00\x01n"
    assert p.encode_dump_req() == b"\x00\x01d"
    assert p.encode_kill_req() == b"\x00\x01k"
    assert p.encode_stop_req("a") == b"\x00\x02sa"
    assert p.encode_port_please2_req("zé") == b"\x00\x04z" + "zé".encode()


@pytest.mark.parametrize("name", ["", "a\x00b", "x" * 256])
def test_request_encoders_refuse_names_epmd_would_refuse(name):
    with pytest.raises(ValueError):
        p.encode_alive2_req(NodeInfo.create(name, 1))
    with pytest.raises(ValueError):
        p.encode_port_please2_req(name)


def test_parse_every_request():
    a = NodeInfo.create("a", 40000, hidden=True, extra=b"xy")
    assert p.parse_request(p.encode_alive2_req(a)[2:]) == p.Alive2Request(a)
    assert p.parse_request(b"za") == p.PortPlease2Request("a")
    assert p.parse_request(b"za\x00") == p.PortPlease2Request("a")  # C-style NUL, like epmd
    assert p.parse_request(b"n") == p.NamesRequest()
    assert p.parse_request(b"nxx") == p.NamesRequest()  # epmd ignores the rest
    assert p.parse_request(b"d") == p.DumpRequest()
    assert p.parse_request(b"k") == p.KillRequest()
    assert p.parse_request(b"sa") == p.StopRequest(b"a")


# --------------------------------------------------------------------------
# sans-I/O: replies, encoded like the real epmd's and parsed in any split


def test_reply_encoders_match_real_epmd_bytes():
    a = NodeInfo.create("a", 40000)
    b = NodeInfo.create("b", 40001, hidden=True, extra=b"xy")
    assert p.encode_port2_resp(a) == REAL_PORT2_A
    assert p.encode_port2_resp(b) == REAL_PORT2_B
    assert p.encode_port2_resp(None) == REAL_PORT2_NONE
    assert p.encode_names_resp(38947, [b, a]) == REAL_NAMES
    assert p.encode_alive2_x_resp(1, 99) == REAL_ALIVE2_TAKEN
    assert p.encode_alive2_x_resp(0, 0x6B027819) == bytes.fromhex("76006b027819")
    assert p.encode_alive2_resp(0, 3) == bytes.fromhex("79000003")
    assert p.encode_kill_resp(True) == b"OK" and p.encode_kill_resp(False) == b"NO"
    assert p.encode_stop_resp(True) == b"STOPPED" and p.encode_stop_resp(False) == b"NOEXIST"
    assert p.encode_dump_resp(38947, [("b", 40001, 6)]) == (
        b"\x00\x00\x98#active name     <b> at port 40001, fd = 6\n\x00")


@pytest.mark.parametrize("data, expected", [
    (bytes.fromhex("76006b027819"), p.Alive2Reply(0, 0x6B027819, True)),
    (REAL_ALIVE2_TAKEN, p.Alive2Reply(1, 99, True)),
    (bytes.fromhex("79000003"), p.Alive2Reply(0, 3, False)),
])
def test_alive2_reply_parser_any_split(data, expected):
    for chunks in splits(data):
        assert feed(p.Alive2ReplyParser(), chunks) == expected


@pytest.mark.parametrize("data, expected", [
    (REAL_PORT2_A, NodeInfo.create("a", 40000)),
    (REAL_PORT2_B, NodeInfo.create("b", 40001, hidden=True, extra=b"xy")),
    (REAL_PORT2_NONE, None),
])
def test_port2_reply_parser_any_split(data, expected):
    for chunks in splits(data):
        parser = p.Port2ReplyParser()
        assert feed(parser, chunks) == expected


def test_names_reply_parser_any_split():
    for chunks in splits(REAL_NAMES):
        reply = feed(p.NamesReplyParser(), chunks, eof=True)
        assert reply == (38947, [("b", 40001), ("a", 40000)])
    assert feed(p.NamesReplyParser(), [b"\x00\x00\x11\x11"], eof=True) == (0x1111, [])
    utf8 = p.encode_names_resp(4369, [("zé", 1)])
    for chunks in splits(utf8):
        assert feed(p.NamesReplyParser(), chunks, eof=True).nodes == [("zé", 1)]


def test_dump_kill_stop_parsers_any_split():
    dump = p.encode_dump_resp(4369, [("a", 1, 5)], [("old", 2, -1)])
    for chunks in splits(dump):
        reply = feed(p.DumpReplyParser(), chunks, eof=True)
        assert reply.port == 4369
        assert reply.lines == ["active name     <a> at port 1, fd = 5",
                               "old/unused name <old>, port = 2, fd = -1 "]
    for answer in (b"OK", b"NO"):
        for chunks in splits(answer):
            assert feed(p.KillReplyParser(), chunks) == answer.decode()
    for answer in (b"STOPPED", b"NOEXIST", b"NOEXISTSTOPPED"):  # the last: OTP 25's bug
        for chunks in splits(answer):
            assert feed(p.StopReplyParser(), chunks) == answer[:7].decode()
    # Refused without a word (real epmd without -relaxed_command_check).
    assert p.StopReplyParser().receive_eof() == ""
    assert p.KillReplyParser().receive_eof() == ""


@pytest.mark.parametrize("parser, data, match", [
    (p.Alive2ReplyParser, b"\x77\x00", "expected an ALIVE2 reply"),
    (p.Alive2ReplyParser, bytes.fromhex("76006b027819") + b"!", "unexpected bytes"),
    (p.Port2ReplyParser, b"\x76\x00", "expected a PORT2 reply"),
    (p.Port2ReplyParser, REAL_PORT2_NONE + b"\x00", "unexpected bytes"),
])
def test_reply_parsers_reject_garbage_at_once(parser, data, match):
    with pytest.raises(ProtocolError, match=match) as err:
        parser().receive_data(data)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("parser, data, match", [
    (p.Alive2ReplyParser, b"\x76\x00\x00", "incomplete ALIVE2 reply"),
    (p.Port2ReplyParser, REAL_PORT2_A[:-1], "incomplete PORT2 reply"),
    (p.Port2ReplyParser, b"", "after 0 bytes"),
    (p.NamesReplyParser, b"\x00\x00", "at least 4"),
    (p.NamesReplyParser, b"\x00\x00\x00\x01hello\n", "unexpected line"),
    (p.NamesReplyParser, b"\x00\x00\x00\x01name a at port 1", "newline"),
    (p.DumpReplyParser, b"\x00\x00\x00\x01active", "NUL"),
])
def test_reply_parsers_reject_garbage_at_eof(parser, data, match):
    prs = parser()
    assert prs.receive_data(data) is False
    with pytest.raises(ProtocolError, match=match) as err:
        prs.receive_eof()
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------
# sans-I/O: the registry and the server connection


def test_registry_creations_like_epmd():
    now = [1_700_000_000.0]
    reg = Registry(clock=lambda: now[0])
    a = NodeInfo.create("a", 1)
    first = reg.register(a, owner="x")
    assert first == 1_700_000_001  # the time, plus one: epmd's counter
    assert reg.register(NodeInfo.create("a", 2)) is None  # taken
    reg.unregister("a")
    again = reg.register(a)
    assert again == first + 1  # a fresh creation for each registration of a name
    # Never 0: the counter skips 0..3 when it wraps.
    now[0] = 2**32 - 1
    assert reg.register(NodeInfo.create("w", 1)) == 4
    # Old nodes (version 5) are told 1..3.
    assert Registry.wire_creation(NodeInfo("o", 1, highest_version=5, lowest_version=5), 10) == 2


def test_registry_lists_newest_first_and_forgets_old_names():
    reg = Registry(clock=lambda: 100)
    for name in "abc":
        reg.register(NodeInfo.create(name, 1))
    assert [n.name for n in reg.nodes()] == ["c", "b", "a"]
    for i in range(p.MAX_UNREG_COUNT + 5):
        reg.register(NodeInfo.create(f"n{i}", 1))
        reg.unregister(f"n{i}")
    assert len(reg.unused()) == p.MAX_UNREG_COUNT


def server(reg=None, **kw):
    return ServerConnection(reg if reg is not None else Registry(), epmd_port=4369, **kw)


def sends(events) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, p.Send))


def errors(events) -> list:
    return [e for e in events if isinstance(e, ProtocolError)]


def test_server_alive2_any_split_and_unregister_on_close():
    a = NodeInfo.create("a", 40000)
    request = p.encode_alive2_req(a)
    for chunks in splits(request):
        reg = Registry(clock=lambda: 1000)
        conn = server(reg)
        events = [e for c in chunks for e in conn.receive_data(c)]
        assert sends(events) == p.encode_alive2_x_resp(0, 1001)
        assert p.Registered(a, 1001) in events
        assert not any(isinstance(e, p.Close) for e in events)  # kept open
        assert reg.lookup("a") == a and conn.registered == a
        assert conn.receive_eof() == [p.Unregistered(a), p.Close()]
        assert reg.lookup("a") is None
    # The transport dying has the same effect.
    reg = Registry()
    conn = server(reg)
    conn.receive_data(request)
    assert conn.connection_lost() == [p.Unregistered(a)]
    assert len(reg) == 0


def test_server_alive2_taken_name_gets_result_1_and_stays_open():
    reg = Registry()
    server(reg).receive_data(p.encode_alive2_req(NodeInfo.create("a", 1)))
    conn = server(reg)
    events = conn.receive_data(p.encode_alive2_req(NodeInfo.create("a", 2)))
    assert sends(events) == REAL_ALIVE2_TAKEN
    assert any(isinstance(e, p.Notice) and "already occupied" in e.message for e in events)
    assert not any(isinstance(e, p.Close) for e in events)  # like epmd
    assert conn.receive_eof() == [p.Close()]  # nothing to unregister
    assert reg.lookup("a").port == 1


@pytest.mark.parametrize("raw_name", [b"\xff\xfe", "x".encode() * 256])
def test_server_alive2_bad_names_get_result_1(raw_name):
    body = (b"x" + struct.pack(">HBBHHH", 1, 77, 0, 6, 6, len(raw_name)) + raw_name + b"\x00\x00")
    reg = Registry()
    events = server(reg).receive_data(struct.pack(">H", len(body)) + body)
    assert sends(events) == REAL_ALIVE2_TAKEN and len(reg) == 0


def test_server_old_version_node_gets_16_bit_reply():
    reg = Registry(clock=lambda: 9)
    events = server(reg).receive_data(p.encode_alive2_req(NodeInfo("o", 5, highest_version=5,
                                                                   lowest_version=5)))
    assert sends(events) == p.encode_alive2_resp(0, 10 % 3 + 1)


def test_server_one_shot_requests_any_split():
    reg = Registry()
    a, b = NodeInfo.create("a", 40000), NodeInfo.create("b", 40001, hidden=True, extra=b"xy")
    server(reg).receive_data(p.encode_alive2_req(a))
    server(reg).receive_data(p.encode_alive2_req(b))
    cases = [
        (p.encode_port_please2_req("a"), REAL_PORT2_A),
        (p.encode_port_please2_req("b"), REAL_PORT2_B),
        (p.encode_port_please2_req("c"), REAL_PORT2_NONE),
        (p.encode_names_req(), REAL_NAMES.replace(b"\x00\x00\x98#", struct.pack(">I", 4369))),
        (p.encode_kill_req(), b"NO"),
    ]
    for request, reply in cases:
        for chunks in splits(request):
            conn = server(reg)
            events = [e for c in chunks for e in conn.receive_data(c)]
            assert sends(events) == reply
            assert isinstance(events[-1], p.Close) or isinstance(events[-2], p.Notice)
            assert not errors(events)


def test_server_kill_rules():
    # No nodes: OK, and the daemon shuts down.
    events = server().receive_data(p.encode_kill_req())
    assert events == [p.Send(b"OK"), p.Close(), p.Shutdown()]
    # Nodes registered: NO, like epmd without -relaxed_command_check ...
    reg = Registry()
    server(reg).receive_data(p.encode_alive2_req(NodeInfo.create("a", 1)))
    events = server(reg).receive_data(p.encode_kill_req())
    assert sends(events) == b"NO" and not any(isinstance(e, p.Shutdown) for e in events)
    # ... and OK with it.
    events = server(reg, relaxed=True).receive_data(p.encode_kill_req())
    assert events == [p.Send(b"OK"), p.Close(), p.Shutdown()]
    # From another host: closed without an answer, like epmd.
    events = server(local_peer=False).receive_data(p.encode_kill_req())
    assert sends(events) == b"" and isinstance(events[-1], p.Close)


def test_server_remote_peers_may_only_look_up():
    reg = Registry()
    server(reg).receive_data(p.encode_alive2_req(NodeInfo.create("a", 40000)))
    remote = dict(local_peer=False)
    assert sends(server(reg, **remote).receive_data(p.encode_port_please2_req("a"))) == REAL_PORT2_A
    assert sends(server(reg, **remote).receive_data(p.encode_names_req())).endswith(b"name a at port 40000\n")
    for request in (p.encode_alive2_req(NodeInfo.create("b", 1)), p.encode_dump_req(),
                    p.encode_stop_req("a")):
        assert sends(server(reg, **remote).receive_data(request)) == b""
    assert [n.name for n in reg.nodes()] == ["a"]


def test_server_stop_rules():
    reg = Registry()
    owner = server(reg)
    a = NodeInfo.create("a", 1)
    owner.receive_data(p.encode_alive2_req(a))
    assert sends(server(reg).receive_data(p.encode_stop_req("a"))) == b""  # refused silently
    assert reg.lookup("a") == a
    events = server(reg, relaxed=True).receive_data(p.encode_stop_req("a"))
    assert p.Evict(owner, a) in events and sends(events) == b"STOPPED"
    assert reg.lookup("a") is None
    assert owner.connection_lost() == []  # already unregistered: no second event
    assert sends(server(reg, relaxed=True).receive_data(p.encode_stop_req("a"))) == b"NOEXIST"


def test_server_dump():
    reg = Registry()
    server(reg).receive_data(p.encode_alive2_req(NodeInfo.create("a", 1)))
    gone = server(reg)
    gone.receive_data(p.encode_alive2_req(NodeInfo.create("b", 2)))
    gone.receive_eof()
    reply = feed(p.DumpReplyParser(), [sends(server(reg).receive_data(p.encode_dump_req()))], eof=True)
    assert reply.lines == ["active name     <a> at port 1, fd = -1",
                           "old/unused name <b>, port = 2, fd = -1 "]


MALFORMED = {
    "length 0": (b"\x00\x00", False, "invalid request length 0"),
    "length 0xFFFF": (b"\xff\xff\x6e", False, "invalid request length 65535"),
    "length just too big": (struct.pack(">H", p.MAX_REQUEST_LEN + 1), False, "invalid request length"),
    "unknown request": (b"\x00\x01Q", False, "unknown request code 81"),
    "truncated at EOF": (b"\x00\x10x\x00\x01", True, "incomplete request"),
    "half a header at EOF": (b"\x00", True, "incomplete request"),
    "two requests at once": (b"\x00\x01n\x00\x01n", False, "unexpected bytes after"),
    "ALIVE2 too short": (b"\x00\x05x\x00\x01M\x00", False, "ALIVE2_REQ too short"),
    "ALIVE2 name too long for body": (
        b"\x00\x0ex" + struct.pack(">HBBHHH", 1, 77, 0, 6, 6, 9) + b"ab\x00", False, "name length 9"),
    "ALIVE2 extra too long for body": (
        b"\x00\x0ex" + struct.pack(">HBBHHH", 1, 77, 0, 6, 6, 1) + b"a\x00\x07", False, "extra length 7"),
    # Real epmd registers "" here (a bug); we refuse it.
    "ALIVE2 empty name": (b"\x00\x0ex" + struct.pack(">HBBHHH", 1, 77, 0, 6, 6, 0) + b"\x00\x00\x00",
                          False, "empty node name"),
    "ALIVE2 NUL in name": (b"\x00\x10x" + struct.pack(">HBBHHH", 1, 77, 0, 6, 6, 3) + b"a\x00b\x00\x00",
                           False, "NUL"),
    "PORT2 empty name": (b"\x00\x01z", False, "without a node name"),
    "PORT2 NUL in name": (b"\x00\x04za\x00b", False, "NUL"),
    "PORT2 bad UTF-8": (b"\x00\x03z\xff\xfe", False, "UTF-8"),
    "STOP no name": (b"\x00\x01s", False, "without a node name"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_server_malformed_input_gives_one_protocol_error(case):
    data, eof, match = MALFORMED[case]
    for chunks in splits(data):
        first_alone = len(chunks[0]) >= 3 or all(len(c) == 1 for c in chunks)
        if case == "two requests at once" and first_alone:
            # The first request came alone: it is answered and the connection
            # closes before the rest is read, as with epmd.
            continue
        reg = Registry()
        conn = server(reg, relaxed=True)
        events = [e for c in chunks for e in conn.receive_data(c)]
        if eof:
            events += conn.receive_eof()
        errs = errors(events)
        assert len(errs) == 1, events
        assert "\n" not in str(errs[0]) and str(errs[0])
        if match:
            assert match in str(errs[0])
        assert sends(events) == b"" and events[-1] == p.Close()
        assert conn.receive_data(b"more") == [] and conn.receive_eof() == []  # closed
        assert len(reg) == 0


def test_server_data_on_a_registration_unregisters():
    reg = Registry()
    a = NodeInfo.create("a", 1)
    conn = server(reg)
    conn.receive_data(p.encode_alive2_req(a))
    events = conn.receive_data(b"x")
    assert len(errors(events)) == 1 and p.Unregistered(a) in events and events[-1] == p.Close()
    assert len(reg) == 0
    # In the same segment as the request: never registered at all.
    reg = Registry()
    events = server(reg).receive_data(p.encode_alive2_req(a) + b"x")
    assert len(errors(events)) == 1 and sends(events) == b"" and len(reg) == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.lists(st.integers(0, 64), max_size=6), st.booleans())
def test_server_survives_any_bytes(data, cuts, eof):
    """Whatever arrives, the core answers with events, never an exception, and
    reports at most one protocol error per connection."""
    reg = Registry()
    conn = server(reg, relaxed=True)
    events = []
    bounds = sorted({0, len(data), *[c for c in cuts if c <= len(data)]})
    for lo, hi in zip(bounds, bounds[1:]):
        events += conn.receive_data(data[lo:hi])
    if eof:
        events += conn.receive_eof()
    events += conn.connection_lost()
    assert len(errors(events)) <= 1
    assert len(reg) == 0


# --------------------------------------------------------------------------
# our daemon and our client


def test_client_and_daemon(daemon):
    async def scenario():
        port = daemon.port
        a = await epmd.register("a", 40000, epmd_port=port)
        b = await epmd.register("b", 40001, hidden=True, epmd_port=port)
        assert a.creation >= 4 and b.creation >= 4
        assert await epmd.names("127.0.0.1", port) == (port, [("b", 40001), ("a", 40000)])
        assert await epmd.port_please("127.0.0.1", "a", port) == NodeInfo.create("a", 40000)
        info = await epmd.port_please("127.0.0.1", "b", port)
        assert info.hidden and info.port == 40001
        assert await epmd.port_please("127.0.0.1", "nope", port) is None
        with pytest.raises(epmd.NameInUse, match=f"name 'a' is already registered with EPMD on port {port}"):
            await epmd.register("a", 40002, epmd_port=port)
        assert await epmd.kill("127.0.0.1", port) == "NO"  # nodes are registered
        assert await epmd.stop("a", "127.0.0.1", port) == ""  # refused without relaxed checks
        await a.close()
        b.close()  # the plain call closes too
        assert a.closed and b.closed
        # A name that comes back gets a new creation.
        deadline = time.monotonic() + 5
        while (await epmd.names("127.0.0.1", port)).nodes:
            assert time.monotonic() < deadline, "registrations outlived their connections"
            await asyncio.sleep(0.02)
        async with await epmd.register("a", 40000, epmd_port=port) as again:
            assert again.creation == a.creation + 1
    asyncio.run(scenario())


def test_registration_lives_as_long_as_its_connection(daemon):
    s, reply = raw_register(daemon.port, NodeInfo.create("a", 40000))
    assert reply[:2] == b"\x76\x00"
    assert daemon.registered() == ["a"]
    s.close()
    wait_for(lambda: daemon.registered() == [], timeout=5, what="a to be unregistered")
    assert listed(daemon.port) == []


def test_client_errors_are_clear():
    port = free_port()
    with pytest.raises(epmd.EpmdUnavailable, match=f"no EPMD is listening on 127.0.0.1:{port}"):
        asyncio.run(epmd.register("a", 1, epmd_port=port, timeout=2))
    with pytest.raises(epmd.EpmdUnavailable):
        epmd.names_sync("127.0.0.1", port)
    # A daemon that accepts and says nothing: every wait has a timeout.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        with pytest.raises(epmd.EpmdNoReply, match="did not answer ALIVE2_REQ within 0.3s"):
            asyncio.run(epmd.register("a", 1, epmd_port=port, timeout=0.3))


def test_names_sync_inside_a_running_loop(daemon):
    async def in_loop():  # like a Jupyter cell
        return epmd.names_sync("127.0.0.1", daemon.port)
    assert asyncio.run(in_loop()) == (daemon.port, [])


def _connection_log(caplog, sock_name) -> list:
    peer = f"{sock_name[0]}:{sock_name[1]}"
    return [r for r in caplog.records if r.name == "clusterkit.epmd" and peer in r.getMessage()]


@pytest.mark.parametrize("case", ["length 0xFFFF", "truncated at EOF", "unknown request",
                                  "two requests at once", "ALIVE2 NUL in name", "garbage 1",
                                  "garbage 2", "garbage 3"])
def test_malformed_request_closes_only_that_connection(daemon, caplog, case):
    caplog.set_level(logging.DEBUG, logger="clusterkit.epmd")
    keeper, reply = raw_register(daemon.port, NodeInfo.create("keeper", 40000))
    assert reply[:2] == b"\x76\x00"
    if case.startswith("garbage"):
        rng = random.Random(case)
        data, half_close = bytes(rng.randrange(256) for _ in range(200)), True
    else:
        data, half_close, _ = MALFORMED[case]
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        assert read_to_eof(s) == b""  # closed, no answer
        me = s.getsockname()
    records = wait_for(lambda: _connection_log(caplog, me), timeout=5, what="the log line")
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert "malformed request" in records[0].getMessage()
    # The daemon serves on, and the other connection's registration stands.
    assert listed(daemon.port) == [("keeper", 40000)]
    assert _connection_log(caplog, me) == records
    keeper.close()


def test_idle_connection_is_closed_but_registration_is_not():
    d = ThreadDaemon(packet_timeout=0.2)
    try:
        keeper, _ = raw_register(d.port, NodeInfo.create("keeper", 1))
        with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
            s.sendall(b"\x00\x05x")  # then nothing
            assert read_to_eof(s) == b""
        assert listed(d.port) == [("keeper", 1)]
        keeper.close()
    finally:
        d.stop()


def test_kill_stops_the_daemon_process(procs):
    port, proc = start_our_epmd(procs)
    reg, _ = raw_register(port, NodeInfo.create("a", 1))
    assert epmd.kill_sync("127.0.0.1", port) == "NO"
    assert proc.poll() is None
    reg.close()
    wait_for(lambda: listed(port) == [], what="a to go")
    assert epmd.kill_sync("127.0.0.1", port) == "OK"
    assert proc.wait(10) == 0


def test_relaxed_daemon_kills_with_nodes_and_drops_them(procs):
    port, proc = start_our_epmd(procs, None, "--relaxed-command-check")
    reg, _ = raw_register(port, NodeInfo.create("a", 1))
    reg.settimeout(5)
    assert epmd.kill_sync("127.0.0.1", port) == "OK"
    assert read_to_eof(reg) == b""  # the node's registration connection is closed
    reg.close()
    assert proc.wait(10) == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_foreground_daemon_stops_cleanly_on_signals(procs, sig):
    port, proc = start_our_epmd(procs)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert b"Traceback" not in err
    assert not port_open(port)


def test_second_daemon_on_a_taken_port_exits_quietly_with_0(procs):
    port, first = start_our_epmd(procs)
    second = procs.start([sys.executable, "-m", "clusterkit", "epmd", "--port", str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert second.wait(20) == 0
    assert first.poll() is None


def test_address_option_listens_on_loopback_only(procs):
    port, proc = start_our_epmd(procs, None, "--address", "127.0.0.1")
    assert listed(port) == []
    bad = procs.start([sys.executable, "-m", "clusterkit", "epmd", "--port", str(free_port()),
                       "--address", "not-an-ip"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = bad.communicate(timeout=20)
    assert bad.returncode == 1 and b"cannot parse IP address 'not-an-ip'" in err


def test_python_m_clusterkit_epmd_works():
    out, err, status = cli(sys.executable, "-m", "clusterkit.epmd", "--port", str(free_port()),
                           "--names")
    assert (out, err, status) == (b"", b"epmd: Cannot connect to local epmd\n", 1)


# --------------------------------------------------------------------------
# ensure_running: a detached daemon that outlives its caller

ENSURE = """
import sys
from clusterkit.epmd import daemon
result = daemon.ensure_running({port})
pid = daemon._spawned[-1].pid if daemon._spawned and result == "started" else 0
print(result, pid, flush=True)
"""


def test_ensure_running_starts_a_detached_daemon_that_outlives_its_caller(procs):
    port = free_port()
    started = []
    try:
        parent = procs.python(ENSURE.format(port=port))
        out, _ = parent.communicate(timeout=30)
        result, pid = out.split()
        started.append(int(pid))
        assert parent.returncode == 0 and result == b"started"
        # The caller is gone; the daemon is not, and it is in its own session.
        assert port_open(port)
        assert daemon_pids(port) == [int(pid)]
        assert os.getsid(int(pid)) == int(pid)
        assert epmd.ensure_running(port) == "running"
        assert listed(port) == []
        assert epmd.kill_sync("127.0.0.1", port) == "OK"
        wait_for(lambda: not port_open(port) and not daemon_pids(port), what="the daemon to exit")
    finally:
        kill_pids(started + daemon_pids(port))


def test_ensure_running_races_leave_exactly_one_daemon(procs):
    port = free_port()
    try:
        parents = [procs.python(ENSURE.format(port=port)) for _ in range(4)]
        results = [parent.communicate(timeout=30)[0].split()[0] for parent in parents]
        assert all(parent.returncode == 0 for parent in parents)
        assert sorted(results) == [b"running"] * 3 + [b"started"]
        assert len(daemon_pids(port)) == 1
        assert epmd.kill_sync("127.0.0.1", port) == "OK"
        wait_for(lambda: not daemon_pids(port), what="the daemon to exit")
    finally:
        kill_pids(daemon_pids(port))


def test_daemon_flag_detaches_like_epmd_daemon():
    port = free_port()
    try:
        out, err, status = ours(port, "--daemon")
        assert status == 0 and out == b"" and port_open(port)
        assert len(daemon_pids(port)) == 1
        assert ours(port, "--daemon")[2] == 0  # already running: quietly fine
        assert len(daemon_pids(port)) == 1
        assert ours(port, "--kill") == (b"Killed\n", b"", 0)
        wait_for(lambda: not daemon_pids(port), what="the daemon to exit")
    finally:
        kill_pids(daemon_pids(port))


@needs_erlang
def test_ensure_running_accepts_real_epmd(real_epmd):
    assert epmd.ensure_running(real_epmd) == "running"
    assert daemon_pids(real_epmd) == []


# --------------------------------------------------------------------------
# the real epmd as the oracle


@needs_erlang
def test_real_epmd_names_lists_nodes_registered_in_our_daemon(clusterkit_epmd):
    port = clusterkit_epmd
    a, _ = raw_register(port, NodeInfo.create("a", 40000))
    b, _ = raw_register(port, NodeInfo.create("zé", 40001, hidden=True))
    expected = (f"epmd: up and running on port {port} with data:\n"
                "name zé at port 40001\nname a at port 40000\n").encode()
    # ERL_EPMD_PORT (set by the fixture) and -port both reach our daemon.
    assert cli("epmd", "-names") == (expected, b"", 0)
    assert cli("epmd", "-port", str(port), "-names") == (expected, b"", 0)
    assert ours(port, "--names") == (expected, b"", 0)
    a.close()
    b.close()
    empty = f"epmd: up and running on port {port} with data:\n".encode()
    wait_for(lambda: cli("epmd", "-names") == (empty, b"", 0), what="names to empty")


@needs_erlang
def test_cli_prints_what_epmd_prints(procs):
    """`clusterkit epmd --names/--kill` against `epmd -names/-kill`, both ways
    round: against our daemon and against the real one."""
    nothing = free_port()
    assert ours(nothing, "--names") == cli("epmd", "-port", str(nothing), "-names") \
        == (b"", b"epmd: Cannot connect to local epmd\n", 1)
    assert ours(nothing, "--kill") == cli("epmd", "-port", str(nothing), "-kill") \
        == (b"", b"epmd: Cannot connect to local epmd\n", 1)
    for start in (start_real_epmd, start_our_epmd):
        port, proc = start(procs)
        node, _ = raw_register(port, NodeInfo.create("a", 40000))
        names = cli("epmd", "-port", str(port), "-names")
        assert names[0].endswith(b"name a at port 40000\n")
        assert ours(port, "--names") == names
        refused = cli("epmd", "-port", str(port), "-kill")
        assert refused == (b"Killing not allowed - living nodes in database.\n", b"", 1)
        assert ours(port, "--kill") == refused
        node.close()
        wait_for(lambda: listed(port) == [], what="a to go")
        assert cli("epmd", "-port", str(port), "-kill") == (b"Killed\n", b"", 0)
        assert proc.wait(10) == 0


@needs_erlang
def test_cli_kill_stops_real_epmd(procs):
    port, proc = start_real_epmd(procs)
    assert ours(port, "--kill") == (b"Killed\n", b"", 0)
    assert proc.wait(10) == 0


def _transcript(port):
    """The same requests, in order; what comes back, raw."""
    t = {}
    a, t["alive a"] = raw_register(port, NodeInfo.create("a", 40000))
    b, t["alive b"] = raw_register(port, NodeInfo.create("b", 40001, hidden=True, extra=b"xy"))
    dup, t["alive a again"] = raw_register(port, NodeInfo.create("a", 40002))
    old, t["alive old"] = raw_register(port, NodeInfo("old", 40003, highest_version=5,
                                                       lowest_version=5))
    bad = b"x" + struct.pack(">HBBHHH", 1, 77, 0, 6, 6, 2) + b"\xff\xfe\x00\x00"
    bad_sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    bad_sock.sendall(struct.pack(">H", len(bad)) + bad)
    t["alive bad utf8"] = recv_exact(bad_sock, 6)
    for name in ("a", "b", "nope"):
        t[f"port {name}"] = exchange(port, p.encode_port_please2_req(name))
    t["port a\\0"] = exchange(port, b"\x00\x03za\x00")
    t["names"] = raw_names(port)
    t["names+junk"] = exchange(port, b"\x00\x03nxx")
    t["dump"] = re.sub(rb"fd = -?\d+", b"fd = N", exchange(port, p.encode_dump_req()))
    t["kill"] = exchange(port, p.encode_kill_req())
    t["stop"] = exchange(port, p.encode_stop_req("a"))
    for case in ("length 0", "length 0xFFFF", "unknown request", "two requests at once",
                 "ALIVE2 NUL in name", "PORT2 empty name", "PORT2 bad UTF-8"):
        data, half_close, _ = MALFORMED[case]
        t[case] = exchange(port, data, half_close=half_close)
    t["truncated"] = exchange(port, b"\x00\x10x\x00\x01", half_close=True)
    # A registration ends with its connection, or with a byte sent on it.
    a.close()
    b.sendall(b"!")
    assert read_to_eof(b) == b""
    wait_for(lambda: raw_names(port)[4:] == b"name old at port 40003\n", what="a and b to go")
    t["names after"] = raw_names(port)
    again, t["alive a 3rd"] = raw_register(port, NodeInfo.create("a", 40000))
    for s in (b, dup, old, bad_sock, again):
        s.close()
    wait_for(lambda: raw_names(port)[4:] == b"", what="every node to go")
    t["kill at the end"] = exchange(port, p.encode_kill_req())
    return t


@needs_erlang
def test_same_bytes_as_real_epmd(procs):
    real_port, real_proc = start_real_epmd(procs)
    our_port, our_proc = start_our_epmd(procs)
    real = _transcript(real_port)
    mine = _transcript(our_port)
    # Creations come from the clock: compare their shape, and how they move.
    for key in ("alive a", "alive b", "alive a 3rd"):
        for t in (real, mine):
            assert t[key][:2] == b"\x76\x00" and len(t[key]) == 6
            assert struct.unpack(">I", t[key][2:])[0] >= 4
    for t in (real, mine):
        assert struct.unpack(">I", t["alive a 3rd"][2:])[0] == struct.unpack(">I", t["alive a"][2:])[0] + 1
        assert t["alive old"][:2] == b"\x79\x00" and 1 <= t["alive old"][3] <= 3
        t.pop("alive a"), t.pop("alive b"), t.pop("alive a 3rd"), t.pop("alive old")
    # The NAMES/DUMP replies start with the daemon's own port.
    for t, port in ((real, real_port), (mine, our_port)):
        for key in ("names", "names+junk", "names after", "dump"):
            assert t[key][:4] == struct.pack(">I", port)
            t[key] = t[key][4:]
    # Ours has no file descriptors to show, and remembers unregistered names
    # (real epmd shows them too, as "old/unused").
    assert real == mine
    assert real_proc.wait(10) == 0 and our_proc.wait(10) == 0


@needs_erlang
def test_our_client_against_real_epmd(real_epmd):
    port = real_epmd

    async def scenario():
        a = await epmd.register("a", 40000, epmd_port=port)
        b = await epmd.register("b", 40001, hidden=True, epmd_port=port)
        assert a.creation >= 4
        assert await epmd.names("127.0.0.1", port) == (port, [("b", 40001), ("a", 40000)])
        assert await epmd.port_please("127.0.0.1", "a", port) == NodeInfo.create("a", 40000)
        assert (await epmd.port_please("127.0.0.1", "b", port)).hidden
        assert await epmd.port_please("127.0.0.1", "nope", port) is None
        with pytest.raises(epmd.NameInUse, match="name 'a' is already registered"):
            await epmd.register("a", 40002, epmd_port=port)
        dump = await epmd.dump("127.0.0.1", port)
        assert dump.port == port and len(dump.lines) == 2
        await a.close()
        await b.close()
        deadline = time.monotonic() + 5
        while (await epmd.names("127.0.0.1", port)).nodes:
            assert time.monotonic() < deadline, "real epmd kept a closed registration"
            await asyncio.sleep(0.02)
        again = await epmd.register("a", 40000, epmd_port=port)
        assert again.creation == a.creation + 1
        # The fixture runs epmd with -relaxed_command_check: KILL works with
        # a node registered, and the node's connection ends.
        assert await epmd.kill("127.0.0.1", port) == "OK"
        await asyncio.wait_for(again.wait_closed(), 5)
        await again.close()
    asyncio.run(scenario())


@needs_erlang
def test_our_client_stop_against_relaxed_real_epmd(procs):
    port, proc = start_real_epmd(procs, relaxed=True)
    node, _ = raw_register(port, NodeInfo.create("a", 1))
    assert asyncio.run(epmd.stop("nope", "127.0.0.1", port)) == "NOEXIST"
    assert asyncio.run(epmd.stop("a", "127.0.0.1", port)) == "STOPPED"
    assert listed(port) == []
    node.close()


@needs_erlang
def test_erl_registers_in_our_daemon(procs, clusterkit_epmd):
    port = clusterkit_epmd
    erl = procs.start(["erl", "-noshell", "-name", "x@127.0.0.1", "-setcookie", "c",
                       "-start_epmd", "false", "-eval", "timer:sleep(infinity)"],
                      env={"ERL_EPMD_PORT": str(port)},
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    names = wait_for(lambda: [n for n, _ in listed(port)] == ["x"] and listed(port),
                     timeout=30, what="erl to register")
    info = epmd.port_please_sync("127.0.0.1", "x", port)
    # Visible, TCP, no extra; OTP 25's erl itself offers versions 6 down to 5.
    assert info == NodeInfo("x", names[0][1], lowest_version=5)
    assert cli("epmd", "-names")[0].endswith(f"name x at port {info.port}\n".encode())
    os.killpg(erl.pid, signal.SIGKILL)
    erl.wait(10)
    wait_for(lambda: listed(port) == [], timeout=10, what="x to be unregistered")


@needs_erlang
def test_erl_finds_a_python_registration_through_our_daemon(procs, clusterkit_epmd):
    """erl's own EPMD client (erl_epmd) reads our NAMES and PORT2 replies."""
    port = clusterkit_epmd
    reg, _ = raw_register(port, NodeInfo.create("py", 40123))
    code = ('{ok, Names} = net_adm:names(), '
            '{port, P, V} = erl_epmd:port_please("py", "127.0.0.1"), '
            'io:format("~p ~p ~p~n", [lists:sort(Names), P, V]), halt().')
    out, err, status = cli("erl", "-noshell", "-name", "probe@127.0.0.1", "-setcookie", "c",
                           "-start_epmd", "false", "-eval", code)
    assert status == 0, err
    assert re.fullmatch(rb'\[\{"probe",\d+\},\{"py",40123\}\] 40123 6', out.strip()), out
    reg.close()


def test_erl_epmd_address_sets_the_default_listen_addresses(monkeypatch):
    # As with Erlang's epmd: ERL_EPMD_ADDRESS, else every interface.
    from clusterkit.epmd.__main__ import _parser
    monkeypatch.setenv("ERL_EPMD_ADDRESS", "127.0.0.1,127.0.0.2")
    assert _parser().parse_args([]).address == "127.0.0.1,127.0.0.2"
    assert _parser().parse_args(["--address", "127.0.0.3"]).address == "127.0.0.3"
    monkeypatch.delenv("ERL_EPMD_ADDRESS")
    assert _parser().parse_args([]).address is None
