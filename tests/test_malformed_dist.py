"""Bad bytes at a node's distribution port close that one connection, log one line,
and the node goes on serving everyone else."""
import os
import socket
import struct

import pytest

from conftest import wait_for
from nodes import PyNode

from clusterkit.dist import flags as F


@pytest.fixture
def target(procs, clusterkit_epmd):
    b = PyNode(procs, "b@127.0.0.1")
    a = PyNode(procs, "a@127.0.0.1")
    assert a.eval("Node.ping('b@127.0.0.1')") == "pong"
    port = b.eval("ck.node().port")
    return a, b, port


def _name_message(flags=F.OFFERED | F.PUBLISHED, name=b"x@127.0.0.1"):
    body = b"N" + struct.pack(">QIH", flags, 7, len(name)) + name
    return struct.pack(">H", len(body)) + body


def _handshake_to_connected(port, cookie="secret_token"):
    """Drive a real handshake by hand, so later frames reach the connected state."""
    from clusterkit.dist import handshake as hs
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    h = hs.Handshake(hs.Role.INITIATOR, "x@127.0.0.1", 7, peer_node="b@127.0.0.1",
                     cookie=cookie)
    s.sendall(h.data_to_send())
    while True:
        data = s.recv(4096)
        assert data, "the node closed the connection during the handshake"
        events = h.receive_data(data)
        s.sendall(h.data_to_send())
        if any(isinstance(e, hs.Completed) for e in events):
            return s


def _closed(sock) -> bool:
    sock.settimeout(5)
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


BAD_HANDSHAKES = {
    "random bytes": b"\x00\x3e" + bytes(range(7, 69)),
    "bogus 2-byte length then close": b"\xff\xff" + b"N" * 10,
    "old version 5 name": b"\x00\x0anabcdefghi",
    "missing mandatory flags": _name_message(flags=F.PUBLISHED | F.HANDSHAKE_23),
    "name without @": _name_message(name=b"nobody"),
}


@pytest.mark.parametrize("what", list(BAD_HANDSHAKES))
def test_bad_handshakes(target, what):
    a, b, port = target
    before = len(b.lines)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(BAD_HANDSHAKES[what])
    if what.startswith("bogus"):
        s.shutdown(socket.SHUT_WR)
    assert _closed(s)
    s.close()
    if what == "missing mandatory flags":
        b.wait_log("rejected since it cannot handle")
    elif not what.startswith("bogus"):
        b.wait_log("closing distribution connection from")
    # the node goes on serving: the old connection still works, and new ones too
    assert a.eval("Node.ping('b@127.0.0.1')") == "pong"
    new_lines = b.lines[before:]
    assert len([l for l in new_lines if l.startswith(("[ERROR]", "[WARNING]"))]) <= 1


BAD_FRAMES = {
    "bogus 4-byte length": b"\x7f\xff\xff\xff" + b"p",
    "not pass-through": struct.pack(">I", 3) + b"\x83ab",
    "truncated term": struct.pack(">I", 4) + b"p\x83h\x03",
    "garbage term": struct.pack(">I", 9) + b"p" + os.urandom(8),
    "unknown control tag": struct.pack(">I", 6) + b"p\x83h\x01a\x63",
}


@pytest.mark.parametrize("what", list(BAD_FRAMES))
def test_bad_frames_after_the_handshake(target, what):
    a, b, port = target
    s = _handshake_to_connected(port)
    wait_for(lambda: "x@127.0.0.1" in b.eval("Node.list()"), what="x to be connected")
    before = len(b.lines)
    s.sendall(BAD_FRAMES[what])
    assert _closed(s)
    s.close()
    b.wait_log("closing distribution connection from 'x@127.0.0.1'")
    wait_for(lambda: "x@127.0.0.1" not in b.eval("Node.list()"), what="x to be dropped")
    assert a.eval("Node.ping('b@127.0.0.1')") == "pong"
    warnings = [l for l in b.lines[before:] if l.startswith(("[ERROR]", "[WARNING]"))]
    assert len(warnings) == 1, warnings


def test_truncated_frame_then_close_is_just_a_disconnect(target):
    a, b, port = target
    s = _handshake_to_connected(port)
    b.run("net_kernel.monitor_nodes(True)")
    s.sendall(struct.pack(">I", 100) + b"p\x83")
    s.close()
    assert b.eval("ck.receive(timeout=10)") == ("nodedown", "x@127.0.0.1")
    assert a.eval("Node.ping('b@127.0.0.1')") == "pong"
