"""Watching the cluster: monitor_nodes and its options, an Observer GenServer, killed,
frozen and stopped peers, and hidden nodes."""
import os
import signal

import pytest

from conftest import requires_erlang
from nodes import ErlNode, PyNode

OBSERVER = """
import logging
seen = []
class Observer(GenServer):
    def init(self, arg):
        net_kernel.monitor_nodes(True)
        return ("ok", None)
    def handle_info(self, message, state):
        seen.append(message)
        print(f"[Observer] {message[0]}: {message[1]}")
        return ("noreply", state)
GenServer.start(Observer, None, name="Observer")
"""


@pytest.fixture
def watcher(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1", net_ticktime=2)
    a.run(OBSERVER)
    return a


def test_observer_logs_up_and_clean_stop(procs, watcher):
    b = PyNode(procs, "b@127.0.0.1")
    assert b.eval("Node.ping('a@127.0.0.1')") == "pong"
    watcher.wait_log("[Observer] nodeup: b@127.0.0.1")
    b.run("ck.stop()")
    watcher.wait_log("[Observer] nodedown: b@127.0.0.1")


def test_killed_peer_is_down_at_once(procs, watcher):
    b = PyNode(procs, "b@127.0.0.1", net_ticktime=60)
    assert b.eval("Node.ping('a@127.0.0.1')") == "pong"
    watcher.wait_log("[Observer] nodeup: b@127.0.0.1")
    b.proc.kill()
    # The socket closes with the process: no need to wait for net_ticktime (60 s here).
    watcher.wait_log("[Observer] nodedown: b@127.0.0.1", timeout=5)


def test_frozen_peer_is_down_after_net_ticktime(procs, watcher):
    b = PyNode(procs, "b@127.0.0.1", net_ticktime=2)
    assert b.eval("Node.ping('a@127.0.0.1')") == "pong"
    watcher.wait_log("[Observer] nodeup: b@127.0.0.1")
    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        watcher.wait_log("[Observer] nodedown: b@127.0.0.1", timeout=15)
        watcher.wait_log("not responding")
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)


def test_monitor_nodes_options(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1")
    b = PyNode(procs, "b@127.0.0.1")
    h = PyNode(procs, "h@127.0.0.1", hidden=True)
    a.run("net_kernel.monitor_nodes(True, node_type='all', nodedown_reason=True)")
    assert b.eval("Node.connect('a@127.0.0.1')") is True
    assert a.eval("ck.receive(timeout=10)") == ("nodeup", "b@127.0.0.1",
                                                 {"node_type": "visible"})
    assert h.eval("Node.connect('a@127.0.0.1')") is True
    assert a.eval("ck.receive(timeout=10)") == ("nodeup", "h@127.0.0.1",
                                                 {"node_type": "hidden"})
    assert a.eval("Node.list()") == ["b@127.0.0.1"]
    assert a.eval("Node.list('hidden')") == ["h@127.0.0.1"]
    assert sorted(a.eval("Node.list('connected')")) == ["b@127.0.0.1", "h@127.0.0.1"]
    assert h.eval("Node.list()") == []                       # a hidden node sees no one
    assert h.eval("Node.list('hidden')") == ["a@127.0.0.1"]
    b.run("ck.stop()")
    assert a.eval("ck.receive(timeout=10)") == (
        "nodedown", "b@127.0.0.1", {"node_type": "visible", "nodedown_reason": "connection_closed"})
    # the default subscription only sees visible nodes
    a.run("net_kernel.monitor_nodes(False); net_kernel.monitor_nodes(True)")
    h.run("ck.stop()")
    assert a.eval("ck.receive(timeout=2, default='nothing')") == "nothing"


def test_node_monitor_for_one_node(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1")
    b = PyNode(procs, "b@127.0.0.1")
    assert a.eval("Node.monitor('b@127.0.0.1', True)") is True
    b.proc.kill()
    assert a.eval("ck.receive(timeout=10)") == ("nodedown", "b@127.0.0.1")
    assert a.eval("Node.monitor('nobody@127.0.0.1', True)") is True
    assert a.eval("ck.receive(timeout=10)") == ("nodedown", "nobody@127.0.0.1")


@requires_erlang
def test_hidden_and_monitoring_with_real_erlang(procs, real_epmd):
    py = PyNode(procs, "py@127.0.0.1", net_ticktime=4)
    py.run(OBSERVER)
    erl = ErlNode(procs, "e@127.0.0.1", extra_args=("-kernel", "net_ticktime", "4"))
    erl.eval("Self = self(), spawn(fun() -> net_kernel:monitor_nodes(true), "
             "register(watch, self()), Self ! ready, (fun L() -> receive M -> "
             "io:format(\"[erl] ~p~n\", [M]), L() end end)() end), receive ready -> ok end.")
    assert erl.eval("net_adm:ping('py@127.0.0.1').") == "pong"
    py.wait_log("[Observer] nodeup: e@127.0.0.1")
    erl.wait_log("[erl] {nodeup,'py@127.0.0.1'}")
    hidden = ErlNode(procs, "h@127.0.0.1", extra_args=("-hidden",))
    assert hidden.eval("net_adm:ping('py@127.0.0.1').") == "pong"
    assert py.eval("Node.list('hidden')") == ["h@127.0.0.1"]
    assert py.eval("Node.list()") == ["e@127.0.0.1"]
    # freeze a third node watched by both: both drop it
    c = PyNode(procs, "c@127.0.0.1", net_ticktime=4)
    assert c.eval("Node.ping('e@127.0.0.1')") == "pong"
    assert c.eval("Node.ping('py@127.0.0.1')") == "pong"
    py.wait_log("[Observer] nodeup: c@127.0.0.1")
    erl.wait_log("[erl] {nodeup,'c@127.0.0.1'}")
    os.kill(c.proc.pid, signal.SIGSTOP)
    try:
        py.wait_log("[Observer] nodedown: c@127.0.0.1", timeout=20)
        erl.wait_log("[erl] {nodedown,'c@127.0.0.1'}", timeout=20)
    finally:
        os.kill(c.proc.pid, signal.SIGCONT)
