"""The sans-I/O distribution connection: handshake to Up, ticks, set-up timeout and the
simultaneous-connect tie-break, driven in memory against a fake clock (no sockets, no
waiting: every test here runs in microseconds)."""
import pytest

from clusterkit.dist import control, handshake as hs
from clusterkit.dist.connection import (DistConnection, PeerSilent, ProtocolError, Role,
                                        SetupTimeout, Up, keeps_own_attempt)
from clusterkit.dist.framing import TICK_FRAME
from clusterkit.etf import Atom, Pid

A, B = "a@127.0.0.1", "b@127.0.0.1"


def pair(now=0.0, ticktime=60, **kw):
    a = DistConnection(Role.INITIATOR, A, 1, now=now, peer_node=B, cookie="c",
                       net_ticktime=ticktime, **kw)
    b = DistConnection(Role.ACCEPTOR, B, 2, now=now, net_ticktime=ticktime, **kw)
    return a, b


def pump(a, b, now=0.0, decide=lambda conn, ev: conn.accept("c")):
    """Move bytes both ways until neither side has any; returns each side's events."""
    got = {id(a): [], id(b): []}
    for _ in range(20):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.data_to_send()
            if data:
                moved = True
                events = dst.receive_data(data, now)
                got[id(dst)].extend(events)
                for ev in events:
                    if isinstance(ev, hs.NameReceived):
                        got[id(dst)].extend(decide(dst, ev) or [])
        if not moved:
            break
    return got[id(a)], got[id(b)]


def connected(now=0.0, ticktime=60):
    a, b = pair(now, ticktime)
    ea, eb = pump(a, b, now)
    assert [type(e) for e in ea] == [Up] and isinstance(eb[-1], Up)
    return a, b


def test_handshake_reaches_up_on_both_sides():
    a, b = connected()
    assert a.up and b.up and a.peer_node == B and b.peer_node == A
    assert not a.hidden and a.peer_creation == 2 and b.peer_creation == 1


def test_messages_flow_after_up_in_order():
    a, b = connected()
    to = Pid(Atom(B), 1, 0, 2)
    for i in range(3):
        a.send(control.send_frame(to, i))
    data = a.data_to_send()
    # At any split, the same events come out.
    for cut in range(len(data) + 1):
        _a, b2 = connected()
        events = b2.receive_data(data[:cut], 1.0) + b2.receive_data(data[cut:], 1.0)
        assert [e.message for e in events] == [0, 1, 2]


def test_refusal_sends_the_status_then_fails():
    a, b = pair()
    ea, eb = pump(a, b, decide=lambda conn, ev: conn.reject("not_allowed"))
    assert any(isinstance(e, hs.Failed) for e in eb)
    assert any(isinstance(e, hs.Failed) and "not_allowed" in e.reason for e in ea)
    assert b.next_timer() is None and a.next_timer() is None     # both closed


def test_wrong_cookie_fails_with_erlangs_line():
    a = DistConnection(Role.INITIATOR, A, 1, now=0, peer_node=B, cookie="wrong")
    b = DistConnection(Role.ACCEPTOR, B, 2, now=0)
    _ea, eb = pump(a, b)
    failed = [e for e in eb if isinstance(e, hs.Failed)]
    assert failed and "Invalid challenge reply" in failed[0].log


def test_setup_timeout_fires_at_the_deadline_only():
    a, _b = pair(now=100.0, setup_time=7.0)
    assert a.next_timer() == 107.0
    assert a.on_timer(106.9) == []
    assert a.on_timer(107.0) == [SetupTimeout()]
    assert a.next_timer() is None


def test_idle_connection_sends_a_tick_each_interval():
    a, b = connected(now=0.0, ticktime=60)
    assert a.next_timer() == 15.0
    writes = 0
    for n in range(1, 4):
        b_ticks = b.on_timer(15.0 * n, writes=0)
        assert b_ticks == []
        a.receive_data(b.data_to_send(), 15.0 * n)      # b's tick keeps a hearing
        assert a.on_timer(15.0 * n, writes=writes) == []
        assert a.data_to_send() == TICK_FRAME
        writes += 1


def test_no_tick_when_something_was_written_or_is_pending():
    a, b = connected()
    assert a.on_timer(15.0, writes=5) == []        # five writes since the last tick
    assert a.data_to_send() == b""
    a.receive_data(TICK_FRAME, 16.0)
    assert a.on_timer(30.0, writes=5, pending=100) == []     # bytes still waiting
    assert a.data_to_send() == b""


def test_silent_peer_is_dropped_after_four_intervals():
    a, _b = connected()
    results = [a.on_timer(15.0 * n, writes=n) for n in range(1, 5)]
    assert results[:3] == [[], [], []]
    assert results[3] == [PeerSilent()]
    assert a.next_timer() is None


def test_hearing_anything_resets_the_silence():
    a, _b = connected()
    for n in range(1, 4):
        assert a.on_timer(15.0 * n) == []
    a.receive_data(TICK_FRAME, 50.0)
    for n in range(4, 8):           # tick 4 saw the read: four silent ticks follow it
        assert a.on_timer(15.0 * n) == []
    assert a.on_timer(15.0 * 8) == [PeerSilent()]


def test_garbage_after_up_is_a_protocol_error():
    a, _b = connected()
    events = a.receive_data(b"\x00\x00\x00\x03xyz", 1.0)
    assert len(events) == 1 and isinstance(events[0], ProtocolError)
    assert a.receive_data(b"more", 1.0) == []


def test_oversized_frame_is_refused_without_buffering():
    a = DistConnection(Role.INITIATOR, A, 1, now=0, peer_node=B, cookie="c", max_frame=1000)
    b = DistConnection(Role.ACCEPTOR, B, 2, now=0, max_frame=1000)
    pump(a, b)
    events = a.receive_data((5000).to_bytes(4, "big") + b"p", 1.0)
    assert isinstance(events[0], ProtocolError) and "5000" in events[0].reason


@pytest.mark.parametrize("this,peer,keeps", [
    ("b@127.0.0.1", "a@127.0.0.1", True), ("a@127.0.0.1", "b@127.0.0.1", False),
    ("node10@h", "node9@h", False), ("z@h", "a@h", True)])
def test_tie_break_keeps_the_greater_names_attempt(this, peer, keeps):
    assert keeps_own_attempt(this, peer) is keeps
    assert keeps_own_attempt(peer, this) is not keeps


def test_crossed_attempts_leave_exactly_one():
    # Both dial at once; each acceptor asks the rule; exactly one attempt survives.
    survivors = []
    for me, other in ((A, B), (B, A)):
        ini = DistConnection(Role.INITIATOR, me, 1, now=0, peer_node=other, cookie="c")
        acc = DistConnection(Role.ACCEPTOR, other, 2, now=0)

        def decide(conn, ev, acceptor=other):
            if keeps_own_attempt(acceptor, ev.node):
                return conn.reject("nok")
            conn.accept("c", "ok_simultaneous")
        pump(ini, acc, decide=decide)
        if ini.up:
            survivors.append(me)
    assert survivors == [B]       # b's attempt to a lives: b has the greater name
