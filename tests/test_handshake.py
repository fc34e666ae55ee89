"""The sans-I/O handshake: both ends driven in memory, byte by byte where it matters."""
import hashlib
import struct

import pytest

from clusterkit.dist import flags as F
from clusterkit.dist import handshake as hs


def pair(cookie_a="secret", cookie_b="secret", a_flags=F.OFFERED, hidden=False):
    a = hs.Handshake(hs.Role.INITIATOR, "a@127.0.0.1", 11, peer_node="b@127.0.0.1",
                     cookie=cookie_a, this_flags=a_flags, hidden=hidden)
    b = hs.Handshake(hs.Role.ACCEPTOR, "b@127.0.0.1", 22)
    return a, b


def pump(src, dst, split=False):
    data = src.data_to_send()
    if not split:
        return dst.receive_data(data)
    events = []
    for i in range(len(data)):
        events += dst.receive_data(data[i:i + 1])
    return events


@pytest.mark.parametrize("split", [False, True])
def test_full_handshake(split):
    a, b = pair()
    (name,) = pump(a, b, split)
    assert isinstance(name, hs.NameReceived)
    assert name.node == "a@127.0.0.1" and name.creation == 11
    b.accept("secret")
    assert pump(b, a, split) == []                 # status + challenge
    (done_b,) = pump(a, b, split)                  # challenge reply
    assert isinstance(done_b, hs.Completed) and done_b.node == "a@127.0.0.1"
    (done_a,) = pump(b, a, split)                  # ack
    assert isinstance(done_a, hs.Completed) and done_a.node == "b@127.0.0.1"
    assert done_a.creation == 22 and done_b.creation == 11
    assert done_a.flags == done_b.flags
    assert done_a.flags & F.PUBLISHED


def test_first_message_is_version_6_name():
    a, _ = pair()
    data = a.data_to_send()
    length, tag = struct.unpack(">HB", data[:3])
    assert tag == ord("N") and length == len(data) - 2
    flags, creation, nlen = struct.unpack(">QIH", data[3:17])
    assert flags & F.MANDATORY_26 == F.MANDATORY_26
    assert not flags & (F.ATOM_CACHE | F.DIST_HDR_ATOM_CACHE | F.FRAGMENTS)
    assert data[17:] == b"a@127.0.0.1"


def test_digest_is_md5_of_cookie_and_decimal_challenge():
    assert hs.digest("abc", 1234) == hashlib.md5(b"abc1234").digest()


def test_wrong_cookie_is_rejected_with_erlangs_line():
    a, b = pair(cookie_a="wrong")
    pump(a, b)
    b.accept("secret")
    pump(b, a)
    (failed,) = pump(a, b)
    assert isinstance(failed, hs.Failed)
    assert failed.log == ("** Connection attempt from node 'a@127.0.0.1' rejected. "
                          "Invalid challenge reply. **")
    assert b.data_to_send() == b""                 # the acceptor just closes
    closed = a.connection_lost()
    assert "cookies differ" in closed.reason


def test_missing_mandatory_flags_are_refused():
    a, b = pair(a_flags=F.MANDATORY_25 & ~F.MAP_TAG & ~F.BIG_CREATION)
    (failed,) = pump(a, b)
    assert isinstance(failed, hs.Failed)
    assert "rejected since it cannot handle" in failed.log
    assert '"MAP_TAG"' in failed.log and '"BIG_CREATION"' in failed.log
    assert pump(b, a) == [hs.Failed(
        "b@127.0.0.1 does not allow this node to connect (not_allowed)")]


@pytest.mark.parametrize("status", ["nok", "not_allowed"])
def test_refusal_statuses(status):
    a, b = pair()
    pump(a, b)
    b.reject(status)
    (failed,) = pump(b, a)
    assert isinstance(failed, hs.Failed) and status in failed.reason


def test_ok_simultaneous_and_alive():
    a, b = pair()
    pump(a, b)
    b.accept("secret", "ok_simultaneous")
    events = pump(b, a)
    assert isinstance(events[0], hs.SimultaneousAccepted)
    a2, b2 = pair()
    pump(a2, b2)
    b2._send(b"salive")
    b2.state = hs.State.AWAIT_DECISION
    (query,) = pump(b2, a2)
    assert isinstance(query, hs.AliveQuery)
    a2.answer_alive(True)
    assert a2.data_to_send() == b"\x00\x05strue"


def test_acceptor_must_name_itself_as_dialled():
    a = hs.Handshake(hs.Role.INITIATOR, "a@127.0.0.1", 1, peer_node="c@127.0.0.1",
                     cookie="s")
    b = hs.Handshake(hs.Role.ACCEPTOR, "b@127.0.0.1", 2)
    pump(a, b)
    b.accept("s")
    (failed,) = pump(b, a)
    assert isinstance(failed, hs.Failed) and "dialled c@127.0.0.1" in failed.reason


def test_leftover_bytes_after_ack_are_kept():
    a, b = pair()
    pump(a, b)
    b.accept("secret")
    pump(b, a)
    pump(a, b)
    data = b.data_to_send() + b"\x00\x00\x00\x00"   # ack, then a tick already
    (done,) = a.receive_data(data)
    assert done.leftover == b"\x00\x00\x00\x00"


@pytest.mark.parametrize("garbage", [
    b"\x00\x01X",                                   # unknown tag
    b"\x00\x03nab",                                 # old 'n' message
    b"\x00\x10N" + b"\x00" * 15,                    # too short for a name
    b"\x00\x13N" + b"\x00" * 14 + b"\x00\x09" + b"ab",   # name length lies
    b"\x00\x12N" + b"\x00" * 14 + b"\x00\x03" + b"a@b"[:1] + b"xy",  # not a node name
])
def test_malformed_name_messages_fail_cleanly(garbage):
    b = hs.Handshake(hs.Role.ACCEPTOR, "b@127.0.0.1", 2)
    events = b.receive_data(garbage)
    assert len(events) == 1 and isinstance(events[0], hs.Failed)
    assert b.state is hs.State.CLOSED


def test_alive_exchange_on_the_acceptor():
    a, b = pair()
    pump(a, b)
    b.ask_alive("secret")
    (query,) = pump(b, a)
    assert isinstance(query, hs.AliveQuery)
    a.answer_alive(True)
    events = pump(a, b)
    assert isinstance(events[0], hs.AliveConfirmed)
    assert pump(b, a) == []                          # the challenge came after `alive`
    (done,) = pump(a, b)
    assert isinstance(done, hs.Completed)


def test_alive_answered_false_ends_the_attempt():
    a, b = pair()
    pump(a, b)
    b.ask_alive("secret")
    pump(b, a)
    a.answer_alive(False)
    (failed,) = pump(a, b)
    assert isinstance(failed, hs.Failed) and "alive" in failed.reason

