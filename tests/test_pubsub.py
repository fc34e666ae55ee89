"""PubSub: Phoenix.PubSub's PG2 adapter among clusterkit nodes and with an Erlang stand-in
for the adapter (tests/erl/phx_pg2.erl) on a real OTP 25 node."""
import pathlib
import shutil
import subprocess

import pytest

from conftest import requires_erlang, wait_for
from nodes import AgentError, ErlNode, PyNode

from clusterkit import Atom
from clusterkit.pubsub import adapter_name, elixir_atom, groups

ERL_DIR = pathlib.Path(__file__).parent / "erl"
ADAPTER = "Atom('Elixir.my_pubsub.Adapter')"
NOTHING = "ck.receive(timeout=0.3, default='nothing')"


def test_names_are_the_atoms_elixir_uses():
    assert elixir_atom("my_pubsub") == Atom("my_pubsub")
    assert elixir_atom("MyApp.PubSub") == Atom("Elixir.MyApp.PubSub")
    assert adapter_name("my_pubsub") == Atom("Elixir.my_pubsub.Adapter")
    assert adapter_name("MyApp.PubSub") == Atom("Elixir.MyApp.PubSub.Adapter")
    assert groups("my_pubsub", 3) == [Atom("Elixir.my_pubsub.Adapter"),
                                       Atom("Elixir.my_pubsub.Adapter_2"),
                                       Atom("Elixir.my_pubsub.Adapter_3")]


@pytest.mark.skipif(shutil.which("elixir") is None, reason="elixir is not installed")
def test_group_names_match_real_elixir():
    # What Phoenix.PubSub.PG2 computes: Module.concat(name, "Adapter"), then "_N" shards.
    script = ('for n <- [:my_pubsub, Talkies.PubSub, :"Elixir.Talkies.PubSub"] do '
              'a = Module.concat(n, "Adapter"); '
              'IO.puts(Enum.join([a, :"#{a}_2"], " ")) end')
    out = subprocess.run(["elixir", "-e", script], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    ours = [str(g) for name in ("my_pubsub", "Talkies.PubSub", Atom("Elixir.Talkies.PubSub"))
            for g in groups(name, 2)]
    assert ours == out


@pytest.fixture
def trio(procs, clusterkit_epmd):
    nodes = [PyNode(procs, f"{n}@127.0.0.1") for n in "abc"]
    for n in nodes:
        assert n.eval("PubSub.start('my_pubsub')")[0] == "ok"
    a, b, c = nodes
    assert a.eval("Node.connect('b@127.0.0.1')") and a.eval("Node.connect('c@127.0.0.1')")
    for n in nodes:
        wait_for(lambda n=n: len(n.eval(f"pg.get_members('Elixir.Phoenix.PubSub', {ADAPTER})"))
                 == 3, what=f"{n.name} to see three workers")
    return a, b, c


def test_broadcast_reaches_every_subscriber_once(trio):
    a, b, c = trio
    for n in (a, b):
        n.eval("PubSub.subscribe('my_pubsub', 'test')")
    b.eval("PubSub.subscribe('my_pubsub', 'test')")       # twice: gets it twice
    assert c.eval("PubSub.broadcast('my_pubsub', 'test', {'a': 1})") == "ok"
    assert a.eval("ck.receive(timeout=10)") == {"a": 1}
    assert b.eval("[ck.receive(timeout=10) for _ in range(2)]") == [{"a": 1}, {"a": 1}]
    assert a.eval(NOTHING) == "nothing" and b.eval(NOTHING) == "nothing"
    assert c.eval(NOTHING) == "nothing"
    assert b.eval("len(PubSub.subscribers('my_pubsub', 'test'))") == 2
    b.eval("PubSub.unsubscribe('my_pubsub', 'test')")
    c.eval("PubSub.broadcast('my_pubsub', 'test', 'again')")
    assert a.eval("ck.receive(timeout=10)") == "again"
    assert b.eval(NOTHING) == "nothing"


def test_broadcast_from_local_and_direct(trio):
    a, b, c = trio
    for n in trio:
        n.eval("PubSub.subscribe('my_pubsub', 'room')")
    a.eval("PubSub.broadcast_from('my_pubsub', ck.self(), 'room', 'from a')")
    assert b.eval("ck.receive(timeout=10)") == "from a"
    assert c.eval("ck.receive(timeout=10)") == "from a"
    assert a.eval(NOTHING) == "nothing"
    a.eval("PubSub.local_broadcast('my_pubsub', 'room', 'local')")
    assert a.eval("ck.receive(timeout=10)") == "local"
    assert b.eval(NOTHING) == "nothing" and c.eval(NOTHING) == "nothing"
    a.eval("PubSub.direct_broadcast('c@127.0.0.1', 'my_pubsub', 'room', 'direct')")
    assert c.eval("ck.receive(timeout=10)") == "direct"
    assert a.eval(NOTHING) == "nothing" and b.eval(NOTHING) == "nothing"
    assert a.eval("PubSub.node_name('my_pubsub')") == "a@127.0.0.1"


SUBSCRIBER_SERVER = """
class SubscriberServer(GenServer):
    def init(self, topic):
        PubSub.subscribe('my_pubsub', topic)
        return ('ok', [])
    def handle_info(self, message, seen):
        print(f'[SubscriberServer] got {message!r}')
        return ('noreply', seen + [message])
    def handle_call(self, request, from_, seen):
        return ('reply', seen, seen)
GenServer.start(SubscriberServer, 'news', name='SubscriberServer')
"""


def test_a_subscriber_genserver_and_subscribers_that_end(trio):
    a, b, _c = trio
    b.run(SUBSCRIBER_SERVER)
    a.eval("PubSub.broadcast('my_pubsub', 'news', ('hello', 1))")
    b.wait_log("[SubscriberServer] got ('hello', 1)")
    assert b.eval("GenServer.call('SubscriberServer', 'seen')") == [("hello", 1)]
    b.eval("GenServer.stop('SubscriberServer')")
    wait_for(lambda: b.eval("PubSub.subscribers('my_pubsub', 'news')") == [],
             what="the stopped server's subscription to go")


def test_errors_name_the_problem(trio):
    a, _b, _c = trio
    with pytest.raises(AgentError, match="unknown PubSub nope"):
        a.eval("PubSub.broadcast('nope', 't', 1)")
    assert a.eval("PubSub.start('my_pubsub')")[0] == "error"
    with pytest.raises(AgentError, match="pool_size"):
        a.eval("PubSub.start('other', pool_size=0)")


def test_custom_dispatcher_and_pool_size(procs, clusterkit_epmd):
    a, b = PyNode(procs, "a@127.0.0.1"), PyNode(procs, "b@127.0.0.1")
    for n in (a, b):
        n.eval("PubSub.start('sharded', pool_size=3)")
        n.run("PubSub.register_dispatcher('Tagger', lambda entries, from_, m: "
              "[ck.send(pid, ('tagged', meta, m)) for pid, meta in entries])")
    assert sorted(a.eval("pg.which_local_groups('Elixir.Phoenix.PubSub')")) == [
        "Elixir.sharded.Adapter", "Elixir.sharded.Adapter_2", "Elixir.sharded.Adapter_3"]
    assert a.eval("Node.connect('b@127.0.0.1')") is True
    wait_for(lambda: len(a.eval("pg.get_members('Elixir.Phoenix.PubSub', "
                                "Atom('Elixir.sharded.Adapter_3'))")) == 2, what="sync")
    b.eval("PubSub.subscribe('sharded', 't', metadata={'who': 'b'})")
    a.eval("PubSub.broadcast('sharded', 't', 'm', dispatcher='Tagger')")
    assert b.eval("ck.receive(timeout=10)") == ("tagged", {"who": "b"}, "m")


PUBLISHER = """
def publish(tag, n):
    for i in range(n):
        PubSub.broadcast('my_pubsub', 'load', (tag, i))
"""


def test_ten_thousand_broadcasts_none_lost_none_doubled_in_order(trio):
    a, b, c = trio
    for n in trio:
        n.eval("PubSub.subscribe('my_pubsub', 'load')")
        n.run(PUBLISHER)
    counts = {"a1": 3334, "a2": 3333, "b1": 3333}
    a.run("ck.spawn(publish, 'a1', 3334)\nck.spawn(publish, 'a2', 3333)")
    b.run("ck.spawn(publish, 'b1', 3333)")
    for n in trio:
        got = n.eval("[ck.receive(timeout=30) for _ in range(10000)]", timeout=120)
        assert n.eval(NOTHING) == "nothing", f"{n.name} got more than 10,000"
        per = {}
        for tag, i in got:
            per.setdefault(tag, []).append(i)
        assert per == {t: list(range(k)) for t, k in counts.items()}, n.name


# --- against an Erlang stand-in for Phoenix.PubSub.PG2 ---------------------------------

@pytest.fixture
def erl_beam(tmp_path):
    subprocess.run(["erlc", "-o", str(tmp_path), str(ERL_DIR / "phx_pg2.erl")], check=True)
    return tmp_path


@pytest.fixture
def py_and_phx(procs, real_epmd, erl_beam):
    py = PyNode(procs, "py@127.0.0.1")
    erl = ErlNode(procs, "e@127.0.0.1", extra_args=("-pa", str(erl_beam)))
    assert erl.eval("phx_pg2:start(my_pubsub).")[0] == "ok"
    py.eval("PubSub.start('my_pubsub')")
    assert py.eval("Node.connect('e@127.0.0.1')") is True
    wait_for(lambda: len(erl.eval("phx_pg2:members(my_pubsub).")) == 2, what="erl to see py")
    wait_for(lambda: len(py.eval(f"pg.get_members('Elixir.Phoenix.PubSub', {ADAPTER})")) == 2,
             what="py to see erl")
    return py, erl


def erl_receive(erl):
    return erl.eval("receive M -> M after 10000 -> timeout end.")


@requires_erlang
def test_broadcasts_both_ways_with_the_pg2_adapter(py_and_phx):
    py, erl = py_and_phx
    assert erl.eval("phx_pg2:subscribe(my_pubsub, <<\"test\">>).") == "ok"
    py.eval("PubSub.subscribe('my_pubsub', 'test')")
    # from clusterkit: erl's worker gets forward_to_local and dispatches
    py.eval("PubSub.broadcast('my_pubsub', 'test', {'a': 1})")
    assert erl_receive(erl) == {"a": 1}
    assert py.eval("ck.receive(timeout=10)") == {"a": 1}
    # from erl: our worker gets forward_to_local and dispatches
    erl.eval("phx_pg2:broadcast(my_pubsub, <<\"test\">>, {hello, [1, 2]}).")
    assert py.eval("ck.receive(timeout=10)") == ("hello", [1, 2])
    assert erl_receive(erl) == ("hello", [1, 2])
    # broadcast_from skips the sender on its own node only
    py.eval("PubSub.broadcast_from('my_pubsub', ck.self(), 'test', 'skip me')")
    assert erl_receive(erl) == "skip me"
    assert py.eval(NOTHING) == "nothing"
    # direct broadcasts, both ways
    py.eval("PubSub.direct_broadcast('e@127.0.0.1', 'my_pubsub', 'test', 'to erl')")
    assert erl_receive(erl) == "to erl"
    assert py.eval(NOTHING) == "nothing"
    erl.eval("phx_pg2:direct_broadcast('py@127.0.0.1', my_pubsub, <<\"test\">>, to_py).")
    assert py.eval("ck.receive(timeout=10)") == "to_py"
    assert erl.eval("receive M -> M after 300 -> nothing end.") == "nothing"
    # The erl scope took everything we sent as its own kind.
    assert erl.eval("is_process_alive(whereis('Elixir.Phoenix.PubSub')).") is True


@requires_erlang
def test_a_killed_erl_node_leaves_the_adapter_group(py_and_phx):
    py, erl = py_and_phx
    erl.proc.kill()
    wait_for(lambda: len(py.eval(f"pg.get_members('Elixir.Phoenix.PubSub', {ADAPTER})")) == 1,
             what="py to drop erl's worker")
    py.eval("PubSub.subscribe('my_pubsub', 'test')")
    assert py.eval("PubSub.broadcast('my_pubsub', 'test', 'alone')") == "ok"
    assert py.eval("ck.receive(timeout=10)") == "alone"
