"""The runtime's core: two (or three) nodes in this one test process, plus the regressions
of the runtime issue (a frozen receiver, a large reply to erl, short-lived threads).

Nodes in one process share nothing but EPMD: each has its own loop thread, and the test
thread is a shell process on each of them.
"""
import os
import re
import signal
import threading
import time

import pytest

from clusterkit.etf import Atom
from clusterkit.names import parse_local
from clusterkit.runtime.atoms import DOWN, EXIT, NORMAL, YES
from clusterkit.runtime.errors import NotAlive
from clusterkit.runtime.node import LocalNode

from conftest import requires_erlang, wait_for
from nodes import ErlNode, PyNode

MiB = 1024 * 1024


def make_node(name, epmd_port, **kw):
    node = LocalNode(parse_local(name), "secret_token", epmd_port=epmd_port, **kw)
    node.start()
    return node


@pytest.fixture
def trio(clusterkit_epmd):
    nodes = [make_node(f"{n}@127.0.0.1", clusterkit_epmd) for n in "abc"]
    yield nodes
    for node in nodes:
        node.stop()


def on_loop(node, fn):
    async def work():
        return fn()
    return node.runtime.run(work(), timeout=10)


def connect(a, b):
    return a.runtime.run(a.connect(b.atom), timeout=30)


def sink(node, name="sink"):
    proc = node.spawn_process(label=name)
    node.register(name, proc.pid)
    return proc


def take(proc, n, timeout=30.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        ok, m = proc.mailbox.take(max(0.0, deadline - time.monotonic()))
        if not ok:
            raise AssertionError(f"only {len(got)} of {n} messages arrived")
        got.append(m)
    return got


# --- the in-process tier ------------------------------------------------------------------

def test_two_nodes_in_one_process_exchange_messages(trio):
    a, b, _c = trio
    box = sink(b)
    assert connect(a, b) is True
    for i in range(100):
        a.send(("sink", b.atom), (Atom("n"), i))
    assert [m[1] for m in take(box, 100)] == list(range(100))
    assert a.nodes() == [b.atom] and b.nodes() == [a.atom]


def test_crossed_connects_leave_one_connection_each_way(trio):
    a, b, _c = trio
    results = {}
    threads = [threading.Thread(target=lambda x=x, y=y: results.__setitem__(x.atom, connect(x, y)))
               for x, y in ((a, b), (b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {a.atom: True, b.atom: True}
    wait_for(lambda: a.nodes() == [b.atom] and b.nodes() == [a.atom], what="one link")
    box = sink(a)
    b.send(("sink", a.atom), "over the surviving link")
    assert take(box, 1) == ["over the surviving link"]


def test_remote_monitor_gets_down_with_the_reason(trio):
    a, b, _c = trio
    me = a.current_process()
    ready = threading.Event()

    def worker():
        ready.wait(10)
        raise ValueError("boom")
    with b.as_current():
        pid = b.spawn(worker)
    ref = a.monitor(me.pid, pid)
    ready.set()
    msg = a.receive(10, match=lambda m: type(m) is tuple and m[:2] == (DOWN, ref))
    assert msg[4] == (Atom("ValueError"), "boom")


def test_spawn_link_sends_exit_to_a_shell_process(trio):
    a, _b, _c = trio
    pid = a.spawn(lambda: 1 / 0, link=True)
    msg = a.receive(10, match=lambda m: type(m) is tuple and m[:2] == (EXIT, pid))
    assert msg[2][0] == Atom("ZeroDivisionError")


def test_an_exit_signal_ends_a_spawned_process_that_does_not_trap(trio):
    a, _b, _c = trio
    me = a.current_process()
    started = threading.Event()

    def waiter():
        started.set()
        a.receive(30)               # ended from outside: this raises ProcessExit

    pid = a.spawn(waiter)
    started.wait(10)
    ref = a.monitor(me.pid, pid)
    on_loop(a, lambda: a.exit_signal(a.local_process(pid), me.pid, Atom("stop_now")))
    msg = a.receive(10, match=lambda m: type(m) is tuple and m[:2] == (DOWN, ref))
    assert msg[4] == Atom("stop_now")
    assert a.local_process(pid) is None


def test_link_across_nodes_propagates_an_abnormal_exit(trio):
    a, b, _c = trio
    go = threading.Event()

    def doomed():
        go.wait(10)
        raise RuntimeError("far away")
    with b.as_current():
        pid = b.spawn(doomed)
    a.link(pid)
    wait_for(lambda: on_loop(b, lambda: bool(b.local_process(pid).links)), what="link")
    go.set()
    msg = a.receive(10, match=lambda m: type(m) is tuple and m[:2] == (EXIT, pid))
    assert msg[2] == (Atom("RuntimeError"), "far away")


def test_short_lived_threads_end_their_processes(trio):
    a, _b, _c = trio
    me = a.current_process()
    baseline = len(a.processes)
    refs = set()
    for batch in range(20):
        threads, gates = [], []
        for _ in range(50):
            gate, pid_box = threading.Event(), []

            def run(gate=gate, pid_box=pid_box):
                pid_box.append(a.current_process().pid)
                gate.wait(10)
            t = threading.Thread(target=run)
            t.start()
            threads.append((t, gate, pid_box))
        for t, gate, pid_box in threads:
            wait_for(lambda: pid_box, what="the thread's pid")
            refs.add(a.monitor(me.pid, pid_box[0]))
            gate.set()
        for t, _gate, _box in threads:
            t.join(10)
    downs = set()
    while len(downs) < 1000:
        m = a.receive(10, match=lambda m: type(m) is tuple and len(m) == 5 and m[0] == DOWN)
        assert m[4] == NORMAL
        downs.add(m[1])
    assert downs == refs
    wait_for(lambda: len(a.processes) == baseline, what="the process table to shrink back")


def test_backpressure_blocks_the_sender_not_the_node(trio):
    """A receiver that stops reading: the sender blocks past the busy limit, its node
    keeps answering, and once the receiver reads again every message arrives in order."""
    a, b, c = trio
    box = sink(b)
    assert connect(a, b) and connect(a, c)
    channel = a.connections[b.atom].channel
    on_loop(b, lambda: b.connections[a.atom].channel.pause_reading())
    sent = []
    payload = b"\xff" * MiB      # not UTF-8: it arrives as bytes

    def sender():
        for i in range(16):
            a.send(("sink", b.atom), (i, payload))
            sent.append(i)
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    wait_for(lambda: channel.pending > a.dist_buf_busy_limit, what="the outbox to fill")
    wait_for(lambda: t.is_alive() and len(sent) < 16, what="the sender to block")
    stuck_at = len(sent)
    # The node is not stuck: a call to a third node answers while the sender waits.
    reply = a.call((Atom("net_kernel"), c.atom), (Atom("is_auth"), a.atom))
    assert reply == YES and len(sent) == stuck_at and t.is_alive()
    assert channel.pending <= a.dist_buf_busy_limit + MiB + 64
    on_loop(b, lambda: b.connections[a.atom].channel.resume_reading())
    t.join(30)
    assert not t.is_alive() and sent == list(range(16))
    got = take(box, 16)
    assert [m[0] for m in got] == list(range(16)) and all(m[1] == payload for m in got)


def test_many_sends_to_a_slow_receiver_keep_the_bound_and_the_order(trio):
    a, b, _c = trio
    box = sink(b)
    assert connect(a, b)
    channel = a.connections[b.atom].channel
    chunk = b"y" * 4096
    most = [0]

    def sender():
        for i in range(10_000):
            a.send(("sink", b.atom), (i, chunk))
            most[0] = max(most[0], channel.pending)
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    got = []
    while len(got) < 10_000:
        got.extend(take(box, min(200, 10_000 - len(got))))
        time.sleep(0.001)           # drain slowly
    t.join(30)
    assert [m[0] for m in got] == list(range(10_000))
    assert most[0] <= a.dist_buf_busy_limit + 4096 + 64


def test_sends_to_a_node_not_yet_connected_wait_for_it_in_order(trio):
    """As in Erlang, the sender does not wait for the connection: the messages wait for
    it, and arrive in the order they were sent, before anything sent later."""
    a, b, _c = trio
    box = sink(b)
    for i in range(200):
        a.send(("sink", b.atom), i)
    assert [m for m in take(box, 200)] == list(range(200))


def test_sends_to_a_node_that_cannot_be_reached_are_dropped_with_one_line(trio, caplog):
    a, _b, _c = trio
    nobody = Atom("nobody@127.0.0.1")
    for i in range(3):
        a.send(("sink", nobody), i)       # returns at once: nothing listens there

    def dropped():
        return sum(int(m) for m in re.findall(r"(\d+) messages? to 'nobody@127.0.0.1' "
                                              r"dropped", caplog.text))
    wait_for(lambda: dropped() == 3, what="the three drops to be logged")


# --- across processes: a frozen peer, and real Erlang --------------------------------------

def test_senders_blocked_on_a_frozen_peer_return_at_nodedown(procs, clusterkit_epmd):
    a = make_node("a@127.0.0.1", clusterkit_epmd, net_ticktime=2)
    t = None
    try:
        b = PyNode(procs, "b@127.0.0.1", net_ticktime=2)
        b.run("ck.register('sink', ck.self())")
        me = a.current_process()
        on_loop(a, lambda: a.monitor_nodes(me.pid, True))
        assert a.runtime.run(a.connect(Atom("b@127.0.0.1")), timeout=30)
        os.kill(b.proc.pid, signal.SIGSTOP)
        try:
            sent = []

            def sender():
                try:
                    for i in range(16):
                        a.send(("sink", Atom("b@127.0.0.1")), (i, b"z" * MiB))
                        sent.append(i)
                except NotAlive:
                    pass                # a.stop() below ends the sends still trying
            t = threading.Thread(target=sender, daemon=True)
            t.start()
            wait_for(lambda: a.connections[Atom("b@127.0.0.1")].channel.pending
                     > a.dist_buf_busy_limit, what="the outbox to fill")
            stuck_at = len(sent)
            assert stuck_at < 16 and t.is_alive()
            msg = a.receive(20, match=lambda m: type(m) is tuple and m[0] == Atom("nodedown"))
            assert msg == (Atom("nodedown"), Atom("b@127.0.0.1"))
            # The send that was blocked returns once the link is gone (later ones wait
            # for new connection attempts, as Erlang's would).
            wait_for(lambda: len(sent) > stuck_at, what="the blocked send to return")
        finally:
            os.kill(b.proc.pid, signal.SIGCONT)
    finally:
        a.stop()
        if t is not None:
            t.join(10)
            assert not t.is_alive()


@requires_erlang
def test_a_10_mb_binary_to_clusterkit_and_back_to_erl(procs, real_epmd):
    py = PyNode(procs, "py@127.0.0.1")
    py.run(
        "def echo():\n"
        "    ck.register('echo', ck.self())\n"
        "    while True:\n"
        "        sender, payload = ck.receive()\n"
        "        ck.send(sender, (Atom('echoed'), payload))\n"
        "ck.spawn(echo)")
    erl = ErlNode(procs, "e@127.0.0.1")
    size = erl.eval(
        "B = binary:copy(<<7>>, 10000000), "
        "{echo, 'py@127.0.0.1'} ! {self(), B}, "
        "receive {echoed, R} when R =:= B -> byte_size(R) after 30000 -> timeout end",
        timeout=60)
    assert size == 10_000_000
