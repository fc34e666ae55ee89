"""Three clusterkit nodes, each its own process, talking over loopback."""
import pytest

from conftest import wait_for
from nodes import PyNode

from clusterkit import Atom


@pytest.fixture
def trio(procs, clusterkit_epmd):
    return [PyNode(procs, f"{n}@127.0.0.1") for n in "abc"]


def test_connect_ping_pong_and_pang(trio):
    a, b, c = trio
    assert a.eval("Node.list()") == []
    assert a.eval("Node.ping('b@127.0.0.1')") == "pong"
    assert a.eval("Node.list()") == ["b@127.0.0.1"]
    wait_for(lambda: b.eval("Node.list()") == ["a@127.0.0.1"], what="b to see a")
    assert a.eval("Node.ping('nobody@127.0.0.1')") == "pang"
    assert c.eval("Node.connect('a@127.0.0.1')") is True
    # c is up once a's acknowledgement arrives; a records its side on its own loop
    wait_for(lambda: sorted(a.eval("Node.list()")) == ["b@127.0.0.1", "c@127.0.0.1"],
             what="a to list b and c")


def test_messages_to_pids_and_registered_names(trio):
    a, b, _ = trio
    b.run("ck.register('inbox', ck.self())")
    a.run("ck.send(('inbox', 'b@127.0.0.1'), ('hello', [1, 2.5, 'text', b'\\xff']))")
    assert b.eval("ck.receive(timeout=10)") == ("hello", [1, 2.5, "text", b"\xff"])
    # reply to a pid that travelled inside a message
    a.run("ck.send(('inbox', 'b@127.0.0.1'), ('from', ck.self()))")
    b.run("_, who = ck.receive(timeout=10); ck.send(who, Atom('thanks'))")
    assert a.eval("ck.receive(timeout=10)") == Atom("thanks")
    # a message to a name nobody registered is logged on the receiver, not lost silently
    a.run("ck.send(('nobody', 'b@127.0.0.1'), 1)")
    b.wait_log("no process is registered as nobody")


@pytest.mark.parametrize("first", ["a", "b"])
def test_both_orders_of_connecting(trio, first):
    a, b, _ = trio
    x, y = (a, b) if first == "a" else (b, a)
    assert x.eval(f"Node.connect('{y.name}')") is True
    wait_for(lambda: y.eval("Node.list()") == [x.name], what="the other side to see it")
    x.run("ck.register('me', ck.self())")
    y.run(f"ck.send(('me', '{x.name}'), 42)")
    assert x.eval("ck.receive(timeout=10)") == 42


def test_simultaneous_connect_ends_with_one_connection(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1")
    b = PyNode(procs, "b@127.0.0.1")
    for node in (a, b):
        node.run("import threading\n"
                 "def dial(other, go, result):\n"
                 "    go.wait(); result.append(Node.connect(other))\n")
    b.run("ck.register('me', ck.self())")
    for round_ in range(5):
        for node, other in ((a, "b@127.0.0.1"), (b, "a@127.0.0.1")):
            node.run(f"go = threading.Event(); result = []; t = threading.Thread("
                     f"target=dial, args=({other!r}, go, result)); t.start()")
        a.run("go.set()")
        b.run("go.set()")
        assert a.eval("t.join(15) or result") == [True]
        assert b.eval("t.join(15) or result") == [True]
        wait_for(lambda: a.eval("Node.list()") == ["b@127.0.0.1"]
                 and b.eval("Node.list()") == ["a@127.0.0.1"], what="one connection")
        # exactly one live connection on each side, and it carries messages
        assert a.eval("len([c for c in ck.node().connections.values() if c.up])") == 1
        a.run(f"ck.send(('me', 'b@127.0.0.1'), {round_})")
        assert b.eval("ck.receive(timeout=10)") == round_
        assert a.eval("Node.disconnect('b@127.0.0.1')") is True
        wait_for(lambda: b.eval("Node.list()") == [], what="b to see the disconnect")


def test_wrong_cookie_gives_pang_and_the_target_logs_it(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1", cookie="one")
    b = PyNode(procs, "b@127.0.0.1", cookie="two")
    assert a.eval("Node.connect('b@127.0.0.1')") is False
    assert a.eval("Node.ping('b@127.0.0.1')") == "pang"
    b.wait_log("** Connection attempt from node 'a@127.0.0.1' rejected. "
               "Invalid challenge reply. **")
    a.run("Node.set_cookie('two')")
    assert a.eval("Node.ping('b@127.0.0.1')") == "pong"


def test_per_node_cookie(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1", cookie="one")
    b = PyNode(procs, "b@127.0.0.1", cookie="two")
    a.run("Node.set_cookie('b@127.0.0.1', 'two')")
    assert a.eval("Node.ping('b@127.0.0.1')") == "pong"
    assert a.eval("str(Node.get_cookie())") == "one"
    assert a.eval("str(Node.get_cookie('b@127.0.0.1'))") == "two"
    assert b.eval("Node.list()") == ["a@127.0.0.1"]


def test_short_and_long_names_do_not_mix(procs, clusterkit_epmd):
    import socket
    short_host = socket.gethostname().split(".")[0]
    a = PyNode(procs, "a@127.0.0.1")
    s = PyNode(procs, f"s@{short_host}")
    assert a.eval(f"Node.connect('s@{short_host}')") is False
    a.wait_log("System running to use fully qualified hostnames")
    assert s.eval("Node.connect('a@127.0.0.1')") is False
    s.wait_log("System NOT running to use fully qualified hostnames")


def test_disconnect_and_reconnect(trio):
    a, b, _ = trio
    assert a.eval("Node.connect('b@127.0.0.1')") is True
    assert a.eval("Node.disconnect('b@127.0.0.1')") is True
    wait_for(lambda: b.eval("Node.list()") == [], what="b to see the disconnect")
    assert a.eval("Node.list()") == []
    assert a.eval("Node.ping('b@127.0.0.1')") == "pong"


def test_stopped_node_leaves_epmd_and_shows_nodedown(trio):
    a, b, _ = trio
    a.run("net_kernel.monitor_nodes(True)")
    assert a.eval("Node.ping('b@127.0.0.1')") == "pong"
    assert a.eval("ck.receive(timeout=10)") == ("nodeup", "b@127.0.0.1")
    b.run("ck.stop()")
    assert a.eval("ck.receive(timeout=10)") == ("nodedown", "b@127.0.0.1")
    assert a.eval("Node.ping('b@127.0.0.1')") == "pang"


def test_not_alive_and_bad_names(procs, clusterkit_epmd):
    n = PyNode(procs, "x", start=False)
    assert n.eval("Node.self()") == "nonode@nohost"
    assert n.eval("Node.alive()") is False
    assert n.eval("Node.connect('a@127.0.0.1')") == "ignored"
    with pytest.raises(AssertionError, match="cannot be a long name"):
        n.eval("ck.start('a@localhost', longnames=True)")
    with pytest.raises(AssertionError, match="needs a host part"):
        n.eval("ck.start('a@127.0.0.1', cookie='c'); Node.connect('b')")
