"""The transitive mesh (connect_all): Erlang's `global` exchange, run by clusterkit nodes.

A node that connects to one node of a cluster ends up connected to all of them, with
real Erlang nodes and clusterkit nodes in any mix; connect_all=False and hidden nodes
opt out, as in Erlang.
"""

from conftest import requires_erlang, wait_for
from nodes import ErlNode, PyNode


def names(nodes):
    return sorted(str(n) for n in nodes)


def py_list(node):
    return names(node.eval("Node.list()"))


def erl_list(node):
    return names(node.eval("nodes()."))


def synced(node, peer):
    return node.eval(f"'{peer}' in ck.node().global_state.synced")


def test_three_clusterkit_nodes_make_a_full_mesh(procs, clusterkit_epmd):
    a, b, c = (PyNode(procs, f"{n}@127.0.0.1") for n in "abc")
    assert a.eval("Node.connect('b@127.0.0.1')") is True
    assert c.eval("Node.connect('b@127.0.0.1')") is True
    wait_for(lambda: py_list(a) == ["b@127.0.0.1", "c@127.0.0.1"], 15, what="a to meet c")
    wait_for(lambda: py_list(c) == ["a@127.0.0.1", "b@127.0.0.1"], 15, what="c to meet a")
    assert py_list(b) == ["a@127.0.0.1", "c@127.0.0.1"]
    # and the mesh is a working one: a message from a to c goes over the new link
    c.run("ck.register('inbox', ck.self())")
    a.run("ck.send(('inbox', 'c@127.0.0.1'), 'hi')")
    assert c.eval("ck.receive(timeout=10)") == "hi"


def test_four_clusterkit_nodes_two_pairs_join(procs, clusterkit_epmd):
    a, b, c, d = (PyNode(procs, f"{n}@127.0.0.1") for n in "abcd")
    assert a.eval("Node.connect('b@127.0.0.1')") is True
    assert c.eval("Node.connect('d@127.0.0.1')") is True
    assert a.eval("Node.connect('c@127.0.0.1')") is True
    everyone = ["a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1", "d@127.0.0.1"]
    for node in (a, b, c, d):
        others = [n for n in everyone if n != node.name]
        wait_for(lambda: py_list(node) == others, 20, what=f"{node.name} to see everyone")


def test_connect_all_false_keeps_the_mesh_partial(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1", connect_all=False)
    b = PyNode(procs, "b@127.0.0.1")
    c = PyNode(procs, "c@127.0.0.1")
    assert a.eval("ck.api.node().connect_all") is False
    assert c.eval("Node.connect('b@127.0.0.1')") is True
    assert a.eval("Node.connect('b@127.0.0.1')") is True
    # b and c run global with each other; a does not run it at all, so nobody
    # introduces a and c to each other.
    wait_for(lambda: py_list(b) == ["a@127.0.0.1", "c@127.0.0.1"], what="b to see a and c")
    # Once b and c have finished their global exchange, any introduction would be made.
    wait_for(lambda: synced(b, "c@127.0.0.1") and synced(c, "b@127.0.0.1"),
             what="b and c to finish their global exchange")
    assert py_list(a) == ["b@127.0.0.1"]
    assert py_list(c) == ["b@127.0.0.1"]


def test_a_hidden_node_causes_no_transitive_connections(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1")
    b = PyNode(procs, "b@127.0.0.1")
    h = PyNode(procs, "h@127.0.0.1", hidden=True)
    assert a.eval("Node.connect('b@127.0.0.1')") is True
    wait_for(lambda: py_list(b) == ["a@127.0.0.1"], what="b to see a")
    assert h.eval("Node.connect('b@127.0.0.1')") is True
    wait_for(lambda: names(b.eval("Node.list('hidden')")) == ["h@127.0.0.1"],
             what="b to see h")
    # b has handled h's nodeup (its hook runs before the next call on b's loop) and
    # started no global exchange with it: nobody can introduce h to a.
    assert b.eval("'h@127.0.0.1' in ck.node().global_state.sessions") is False
    assert b.eval("'h@127.0.0.1' in ck.node().global_state.known") is False
    assert names(h.eval("Node.list('connected')")) == ["b@127.0.0.1"]
    assert names(a.eval("Node.list('connected')")) == ["b@127.0.0.1"]
    assert names(b.eval("Node.list('hidden')")) == ["h@127.0.0.1"]


@requires_erlang
def test_clusterkit_joins_a_two_node_erlang_cluster(procs, real_epmd):
    e1, e2 = ErlNode(procs, "e1@127.0.0.1"), ErlNode(procs, "e2@127.0.0.1")
    assert e1.eval("net_kernel:connect_node('e2@127.0.0.1').") is True
    assert e1.eval("global:sync().", timeout=20) == "ok"
    p = PyNode(procs, "p@127.0.0.1")
    assert p.eval("Node.connect('e1@127.0.0.1')") is True
    wait_for(lambda: py_list(p) == ["e1@127.0.0.1", "e2@127.0.0.1"], 15, what="p to meet e2")
    wait_for(lambda: erl_list(e2) == ["e1@127.0.0.1", "p@127.0.0.1"], 15,
             what="p in nodes() on e2")
    assert erl_list(e1) == ["e2@127.0.0.1", "p@127.0.0.1"]
    # global on both erl nodes counts p as synced: sync() returns instead of hanging
    assert e1.eval("global:sync().", timeout=20) == "ok"
    assert e2.eval("global:sync().", timeout=20) == "ok"
    # and global keeps working among the Erlang nodes
    assert e1.eval("global:register_name(gname, self()).", timeout=20) == "yes"
    assert e2.eval("is_pid(global:whereis_name(gname)).", timeout=20) is True


@requires_erlang
def test_erlang_joins_a_two_node_clusterkit_cluster(procs, real_epmd):
    a, b = PyNode(procs, "a@127.0.0.1"), PyNode(procs, "b@127.0.0.1")
    assert a.eval("Node.connect('b@127.0.0.1')") is True
    e = ErlNode(procs, "e@127.0.0.1")
    assert e.eval("net_kernel:connect_node('a@127.0.0.1').") is True
    wait_for(lambda: erl_list(e) == ["a@127.0.0.1", "b@127.0.0.1"], 15, what="e to meet b")
    wait_for(lambda: py_list(b) == ["a@127.0.0.1", "e@127.0.0.1"], 15, what="b to see e")
    assert py_list(a) == ["b@127.0.0.1", "e@127.0.0.1"]
    assert e.eval("global:sync().", timeout=20) == "ok"


@requires_erlang
def test_mixed_pairs_merge(procs, real_epmd):
    """An erl+clusterkit pair meets another erl+clusterkit pair: all four meshed."""
    p, e = PyNode(procs, "p@127.0.0.1"), ErlNode(procs, "e@127.0.0.1")
    q, f = PyNode(procs, "q@127.0.0.1"), ErlNode(procs, "f@127.0.0.1")
    assert p.eval("Node.connect('e@127.0.0.1')") is True
    assert f.eval("net_kernel:connect_node('q@127.0.0.1').") is True
    assert e.eval("global:sync().", timeout=20) == "ok"
    assert f.eval("global:sync().", timeout=20) == "ok"
    assert p.eval("Node.connect('q@127.0.0.1')") is True
    everyone = ["e@127.0.0.1", "f@127.0.0.1", "p@127.0.0.1", "q@127.0.0.1"]
    for node, listing in ((p, py_list), (q, py_list), (e, erl_list), (f, erl_list)):
        others = [n for n in everyone if n != node.name]
        wait_for(lambda: listing(node) == others, 20, what=f"{node.name} to see everyone")
    assert e.eval("global:sync().", timeout=20) == "ok"
    assert f.eval("global:sync().", timeout=20) == "ok"


@requires_erlang
def test_erlang_connect_all_false_is_respected(procs, real_epmd):
    """A clusterkit node with connect_all=False between two erl nodes: no mesh."""
    p = PyNode(procs, "p@127.0.0.1", connect_all=False)
    e1, e2 = ErlNode(procs, "e1@127.0.0.1"), ErlNode(procs, "e2@127.0.0.1")
    assert e1.eval("net_kernel:connect_node('p@127.0.0.1').") is True
    assert e2.eval("net_kernel:connect_node('p@127.0.0.1').") is True
    # Both erl nodes have asked p for a global exchange; p, with connect_all=False,
    # keeps the requests unanswered, so it introduces neither to the other.
    wait_for(lambda: p.eval("sorted(map(str, ck.node().global_state.pre_connect))")
             == ["e1@127.0.0.1", "e2@127.0.0.1"], what="both erl nodes to ask p")
    assert erl_list(e1) == ["p@127.0.0.1"]
    assert erl_list(e2) == ["p@127.0.0.1"]
    assert py_list(p) == ["e1@127.0.0.1", "e2@127.0.0.1"]
