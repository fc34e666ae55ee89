"""Ticks keep idle connections up, and a silent (frozen) peer is dropped after
net_ticktime with Erlang's "not responding" line."""
import os
import signal


from conftest import requires_erlang, wait_for
from nodes import ErlNode, PyNode


def _reads(node, peer):
    return node.eval(f"ck.node().connections[Atom('{peer}')].reads")


def test_frozen_python_peer_is_dropped(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1", net_ticktime=2)
    b = PyNode(procs, "b@127.0.0.1", net_ticktime=2)
    a.run("net_kernel.monitor_nodes(True)")
    assert a.eval("Node.ping('b@127.0.0.1')") == "pong"
    assert a.eval("ck.receive(timeout=5)") == ("nodeup", "b@127.0.0.1")
    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        assert a.eval("ck.receive(timeout=15)") == ("nodedown", "b@127.0.0.1")
        a.wait_log("** Node 'b@127.0.0.1' not responding **")
        a.wait_log("** Removing (timedout) connection **")
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)


def test_idle_connection_stays_up_on_ticks(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1", net_ticktime=2)
    b = PyNode(procs, "b@127.0.0.1", net_ticktime=2)
    assert a.eval("Node.connect('b@127.0.0.1')") is True
    start = _reads(a, "b@127.0.0.1")
    # Six ticks from b take 3 s, longer than net_ticktime: the link must survive them.
    wait_for(lambda: _reads(a, "b@127.0.0.1") >= start + 6, timeout=20, interval=0.2,
             what="ticks from b")
    assert a.eval("Node.list()") == ["b@127.0.0.1"]
    assert b.eval("Node.list()") == ["a@127.0.0.1"]


@requires_erlang
def test_ticks_with_real_erlang(procs, real_epmd):
    py = PyNode(procs, "py@127.0.0.1", net_ticktime=4)
    erl = ErlNode(procs, "e@127.0.0.1", extra_args=("-kernel", "net_ticktime", "4"))
    assert py.eval("Node.ping('e@127.0.0.1')") == "pong"
    start = _reads(py, "e@127.0.0.1")
    # Erlang ticks every net_ticktime/4 = 1 s; after 6 of them erl has been idle > 4 s.
    wait_for(lambda: _reads(py, "e@127.0.0.1") >= start + 6, timeout=30, interval=0.3,
             what="ticks from erl")
    assert erl.eval("nodes().") == ["py@127.0.0.1"]
    # Now freeze the Python node: erl drops it with its own line.
    os.kill(py.proc.pid, signal.SIGSTOP)
    try:
        erl.wait_log("not responding", timeout=20)
        assert erl.eval("nodes().") == []
    finally:
        os.kill(py.proc.pid, signal.SIGCONT)
    # And a frozen erl is dropped by the Python node.
    assert py.eval("Node.ping('e@127.0.0.1')") == "pong"
    py.run("net_kernel.monitor_nodes(True)")
    os.kill(erl.proc.pid, signal.SIGSTOP)
    try:
        assert py.eval("ck.receive(timeout=20)") == ("nodedown", "e@127.0.0.1")
        py.wait_log("** Node 'e@127.0.0.1' not responding **")
    finally:
        os.kill(erl.proc.pid, signal.SIGCONT)
