"""pg: OTP 25's process groups, among clusterkit nodes and with real OTP `pg` scopes."""
import pytest

from conftest import requires_erlang, wait_for
from nodes import AgentError, ErlNode, PyNode

from clusterkit import Atom

G1 = "Atom('g1')"

# A process on an erl node that lives until told to stop, registered as m.
ERL_MEMBER = ("register(m, spawn(fun() -> receive stop -> ok end end)), "
              "pg:join(sc, g1, whereis(m)).")
# A clusterkit process that lives until it receives 'stop'.
PY_MEMBER = """
def member():
    ck.receive(match=lambda m: m == 'stop')
worker = ck.spawn(member)
"""


def members(node, group=G1, scope="sc"):
    return sorted(node.eval(f"pg.get_members({scope!r}, {group})"), key=repr)


@pytest.fixture
def two_py(procs, clusterkit_epmd):
    a, b = PyNode(procs, "a@127.0.0.1"), PyNode(procs, "b@127.0.0.1")
    for n in (a, b):
        assert n.eval("pg.start('sc')")[0] == "ok"
    assert a.eval("Node.connect('b@127.0.0.1')") is True
    return a, b


def test_join_leave_and_members_across_clusterkit_nodes(two_py):
    a, b = two_py
    pa = a.eval("ck.self()")
    assert a.eval(f"pg.join('sc', {G1}, ck.self())") == "ok"
    assert a.eval(f"pg.join('sc', {G1}, [ck.self()])") == "ok"      # twice: a member twice
    wait_for(lambda: members(b) == [pa, pa], what="b to see both joins")
    assert b.eval("pg.which_groups('sc')") == ["g1"]
    assert b.eval("pg.which_local_groups('sc')") == []
    assert b.eval(f"pg.get_local_members('sc', {G1})") == []
    assert a.eval(f"pg.get_local_members('sc', {G1})") == [pa, pa]
    assert a.eval(f"pg.leave('sc', {G1}, ck.self())") == "ok"
    wait_for(lambda: members(b) == [pa], what="b to see one leave")
    assert a.eval(f"pg.leave('sc', {G1}, ck.self())") == "ok"
    assert a.eval(f"pg.leave('sc', {G1}, ck.self())") == "not_joined"
    wait_for(lambda: members(b) == [], what="b to see the group empty")
    assert b.eval("pg.which_groups('sc')") == []


def test_sync_brings_earlier_joins_to_a_late_node(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1")
    a.eval("pg.start('sc')")
    pa = a.eval(f"(pg.join('sc', ('any', 'term', [1, 2]), ck.self()), ck.self())[-1]")
    c = PyNode(procs, "c@127.0.0.1")
    c.eval("pg.start('sc')")
    c.eval("pg.join('sc', ('any', 'term', [1, 2]), ck.self())")
    pc = c.eval("ck.self()")
    assert c.eval("Node.connect('a@127.0.0.1')") is True
    group = "('any', 'term', [1, 2])"
    wait_for(lambda: members(c, group) == sorted([pa, pc], key=repr), what="c to sync")
    wait_for(lambda: members(a, group) == sorted([pa, pc], key=repr), what="a to sync")


def test_a_member_that_ends_leaves_and_a_stopped_node_takes_its_members(procs, two_py):
    a, b = two_py
    a.run(PY_MEMBER)
    a.eval(f"pg.join('sc', {G1}, worker)")
    pb = b.eval(f"(pg.join('sc', {G1}, ck.self()), ck.self())[-1]")
    wait_for(lambda: len(members(b)) == 2, what="b to see a's worker")
    a.run("ck.send(worker, 'stop')")
    wait_for(lambda: members(b) == [pb], what="the ended worker to leave on b")
    wait_for(lambda: members(a) == [pb], what="the ended worker to leave on a")
    b.proc.kill()
    wait_for(lambda: members(a) == [], what="a to drop the killed node's members")


def test_monitor_scope_and_monitor_report_joins_and_leaves(two_py):
    a, b = two_py
    a.run("ref, before = pg.monitor_scope('sc')\ngref, gbefore = pg.monitor('sc', Atom('g2'))")
    assert a.eval("before") == {} and a.eval("gbefore") == []
    pb = b.eval(f"(pg.join('sc', {G1}, ck.self()), ck.self())[-1]")
    assert a.eval("ck.receive(timeout=10)") == (a.eval("ref"), "join", "g1", [pb])
    b.eval("pg.join('sc', Atom('g2'), ck.self())")
    got = sorted([a.eval("ck.receive(timeout=10)")[0] for _ in range(2)], key=repr)
    assert got == sorted([a.eval("ref"), a.eval("gref")], key=repr)
    assert a.eval("pg.demonitor('sc', ref)") == "ok"
    b.eval("pg.leave('sc', Atom('g2'), ck.self())")
    assert a.eval("ck.receive(timeout=10)") == (a.eval("gref"), "leave", "g2", [pb])
    assert a.eval("ck.receive(timeout=0.2, default=None)") is None


def test_bad_calls_name_what_is_wrong(two_py):
    a, _b = two_py
    a.run("remote = Pid(Atom('b@127.0.0.1'), 5, 0, 1)")
    with pytest.raises(AgentError, match="local pids only"):
        a.eval(f"pg.join('sc', {G1}, remote)")
    with pytest.raises(AgentError, match="not started"):
        a.eval(f"pg.join('nope', {G1}, ck.self())")
    with pytest.raises(AgentError, match="takes 1 or 2 arguments"):
        a.eval("pg.get_members()")
    assert a.eval("pg.start('sc')")[:1] == ("error",)
    # Something no pg scope expects is logged, and the scope goes on.
    # (The join, handled after the message, keeps the log line apart from the answer.)
    a.run(f"ck.send('sc', ('hello', 1))\nassert pg.join('sc', {G1}, ck.self()) == 'ok'")
    a.wait_log("pg scope sc ignored an unexpected message")
    assert a.eval(f"pg.get_local_members('sc', {G1})") == [a.eval("ck.self()")]


# --- against real OTP 25 pg ---------------------------------------------------------

@pytest.fixture
def py_and_erl(procs, real_epmd):
    py = PyNode(procs, "py@127.0.0.1")
    erl = ErlNode(procs, "e@127.0.0.1")
    erl.eval("{ok, _} = pg:start(sc), ok.")
    erl.eval("put(scope, whereis(sc)), ok.")
    py.eval("pg.start('sc')")
    return py, erl


def erl_members(erl):
    return sorted(erl.eval("pg:get_members(sc, g1)."), key=repr)


def erl_scope_unchanged(erl):
    """The erl scope never crashed on anything we sent (a crash restarts nothing: it
    would be gone, or a new pid)."""
    return erl.eval("whereis(sc) =:= get(scope) andalso is_process_alive(get(scope)).")


@requires_erlang
def test_membership_both_ways_with_erl(py_and_erl):
    py, erl = py_and_erl
    erl.eval(ERL_MEMBER)
    em = erl.eval("whereis(m).")
    pp = py.eval(f"(pg.join('sc', {G1}, ck.self()), ck.self())[-1]")
    assert py.eval("Node.connect('e@127.0.0.1')") is True
    both = sorted([em, pp], key=repr)
    wait_for(lambda: members(py) == both, what="py to sync with erl")
    wait_for(lambda: erl_members(erl) == both, what="erl to sync with py")
    # joins after the connection, both ways
    erl.eval("pg:join(sc, g2, whereis(m)).")
    py.eval("pg.join('sc', Atom('g2'), ck.self())")
    wait_for(lambda: members(py, "Atom('g2')") == both, what="py to see g2")
    wait_for(lambda: sorted(erl.eval("pg:get_members(sc, g2)."), key=repr) == both,
             what="erl to see g2")
    assert sorted(erl.eval("pg:which_groups(sc).")) == ["g1", "g2"]
    # leaves, both ways
    py.eval(f"pg.leave('sc', {G1}, ck.self())")
    wait_for(lambda: erl_members(erl) == [em], what="erl to see py leave")
    erl.eval("pg:leave(sc, g1, whereis(m)).")
    wait_for(lambda: members(py) == [], what="py to see erl leave")
    # an erl member that ends leaves every group on py
    erl.eval("m ! stop, ok.")
    wait_for(lambda: members(py, "Atom('g2')") == [pp], what="py to drop the ended member")
    # a clusterkit member that ends leaves on erl
    py.run(PY_MEMBER)
    pw = py.eval("(pg.join('sc', Atom('g2'), worker), worker)[-1]")
    wait_for(lambda: pw in erl.eval("pg:get_members(sc, g2)."), what="erl to see worker")
    py.run("ck.send(worker, 'stop')")
    wait_for(lambda: erl.eval("pg:get_members(sc, g2).") == [pp], what="erl to drop worker")
    assert erl_scope_unchanged(erl)


@requires_erlang
def test_erl_monitor_scope_sees_clusterkit_joins(py_and_erl):
    py, erl = py_and_erl
    erl.eval("{Ref, _} = pg:monitor_scope(sc), put(ref, Ref), ok.")
    assert py.eval("Node.connect('e@127.0.0.1')") is True
    pp = py.eval(f"(pg.join('sc', {G1}, ck.self()), ck.self())[-1]")
    got = erl.eval("Ref = get(ref), receive {Ref, join, G, P} -> {G, P} after 10000 -> "
                   "timeout end.")
    assert got == ("g1", [pp])
    assert erl_scope_unchanged(erl)


@requires_erlang
def test_node_down_takes_members_both_ways(procs, py_and_erl):
    py, erl = py_and_erl
    erl.eval(ERL_MEMBER)
    assert py.eval("Node.connect('e@127.0.0.1')") is True
    pp = py.eval(f"(pg.join('sc', {G1}, ck.self()), ck.self())[-1]")
    wait_for(lambda: len(members(py)) == 2, what="py to see erl's member")
    wait_for(lambda: len(erl_members(erl)) == 2, what="erl to see py's member")
    # a second clusterkit node, then killed: erl drops its members
    q = PyNode(procs, "q@127.0.0.1")
    q.eval("pg.start('sc')")
    pq = q.eval(f"(pg.join('sc', {G1}, ck.self()), ck.self())[-1]")
    assert q.eval("Node.connect('e@127.0.0.1')") is True
    wait_for(lambda: pq in erl_members(erl), what="erl to see q's member")
    q.proc.kill()
    wait_for(lambda: pq not in erl_members(erl), what="erl to drop the killed node's member")
    assert pp in erl_members(erl)
    # erl killed: py drops its members
    erl.proc.kill()
    wait_for(lambda: members(py) == [pp], what="py to keep only its own member")


@requires_erlang
def test_erl_scope_started_after_the_connection_discovers_us(py_and_erl):
    py, erl = py_and_erl
    assert py.eval("Node.connect('e@127.0.0.1')") is True
    pp = py.eval("(pg.start('late'), pg.join('late', Atom('x'), ck.self()), ck.self())[-1]")
    erl.eval("{ok, _} = pg:start(late), ok.")
    wait_for(lambda: erl.eval("pg:get_members(late, x).") == [pp], what="erl to discover py")
    erl.eval("register(lm, spawn(fun() -> receive stop -> ok end end)), "
             "pg:join(late, x, whereis(lm)).")
    assert wait_for(lambda: len(py.eval("pg.get_members('late', Atom('x'))")) == 2,
                    what="py to see the late erl join")
    assert Atom("x") in py.eval("pg.which_groups('late')")


@requires_erlang
def test_malformed_pg_messages_from_erl_are_logged_and_ignored(py_and_erl):
    py, erl = py_and_erl
    assert py.eval("Node.connect('e@127.0.0.1')") is True
    wait_for(lambda: erl.eval("pg:which_groups(sc).") == [] and py.eval(
        "len(pg.which_groups('sc'))") == 0, what="the scopes to meet")
    erl.eval("{sc, 'py@127.0.0.1'} ! {join, whereis(sc), g1, not_a_pid}, ok.")
    py.wait_log("pg scope sc ignored an unexpected message")
    assert py.eval("pg.which_groups('sc')") == []
    erl.eval(ERL_MEMBER)
    wait_for(lambda: len(members(py)) == 1, what="a good join after the bad one")
