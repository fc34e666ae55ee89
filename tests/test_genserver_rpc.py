"""GenServer and rpc across nodes: Python to Python, and with real Erlang both ways."""
import pytest

from conftest import requires_erlang, wait_for
from nodes import ErlNode, PyNode


PINGPONG = """
class PingPong(GenServer):
    def init(self, arg):
        return ("ok", 0)
    def handle_call(self, request, from_, count):
        if request == "ping":
            return ("reply", Atom("pong"), count + 1)
        if request == "count":
            return ("reply", count, count)
        if request == "crash":
            raise ValueError("asked to crash")
        if request == "slow":
            import time; time.sleep(2)
            return ("reply", "late", count)
        return ("reply", ("unknown", request), count)
    def handle_cast(self, request, count):
        return ("noreply", count + 100)
    def handle_info(self, message, count):
        return ("noreply", count + 1000)
GenServer.start(PingPong, None, name="PingPong")
"""


@pytest.fixture
def pair(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1")
    b = PyNode(procs, "b@127.0.0.1")
    b.run(PINGPONG)
    return a, b


def test_call_cast_and_info_across_nodes(pair):
    a, b = pair
    assert a.eval("GenServer.call(('PingPong', 'b@127.0.0.1'), 'ping')") == "pong"
    assert a.eval("GenServer.cast(('PingPong', 'b@127.0.0.1'), 'x')") == "ok"
    a.run("ck.send(('PingPong', 'b@127.0.0.1'), 'hello')")
    wait_for(lambda: a.eval("GenServer.call(('PingPong', 'b@127.0.0.1'), 'count')") == 1101,
             what="the cast and the info to be handled")
    assert b.eval("GenServer.call('PingPong', 'ping')") == "pong"


def test_call_errors_name_the_server_and_the_node(pair):
    a, b = pair
    with pytest.raises(AssertionError, match="nothing is registered as Nobody on b@127.0.0.1"):
        a.eval("GenServer.call(('Nobody', 'b@127.0.0.1'), 'ping')")
    with pytest.raises(AssertionError, match="CallTimeout: GenServer.call to PingPong on "
                                             "b@127.0.0.1 timed out"):
        a.eval("GenServer.call(('PingPong', 'b@127.0.0.1'), 'slow', timeout=0.5)")
    with pytest.raises(AssertionError, match="no connection to nobody@127.0.0.1"):
        a.eval("GenServer.call(('PingPong', 'nobody@127.0.0.1'), 'ping')")
    # the late reply of the timed-out call does not land in the mailbox
    assert a.eval("GenServer.call(('PingPong', 'b@127.0.0.1'), 'ping', timeout=10)") == "pong"
    assert a.eval("ck.receive(timeout=0.5, default='empty')") == "empty"


def test_crashing_callback_exits_the_server_and_the_node_goes_on(pair):
    a, b = pair
    with pytest.raises(AssertionError, match="CallError.*asked to crash"):
        a.eval("GenServer.call(('PingPong', 'b@127.0.0.1'), 'crash')")
    b.wait_log("** GenServer PingPong terminating")
    assert b.eval("ck.whereis('PingPong')") is None
    b.run(PINGPONG)
    assert a.eval("GenServer.call(('PingPong', 'b@127.0.0.1'), 'ping')") == "pong"


def test_rpc_between_python_nodes(pair):
    a, b = pair
    assert a.eval("rpc.call('b@127.0.0.1', 'math', 'sqrt', [16])") == 4.0
    assert a.eval("rpc.call('b@127.0.0.1', 'erlang', 'node', [])") == "b@127.0.0.1"
    bad = a.eval("rpc.call('b@127.0.0.1', 'math', 'sqrt', [-1])")
    assert bad[0] == "badrpc" and bad[1][0] == "EXIT"
    undef = a.eval("rpc.call('b@127.0.0.1', 'no_such_module', 'f', [])")
    assert undef[0] == "badrpc" and undef[1][1][0] == "undef"
    assert a.eval("rpc.call('nobody@127.0.0.1', 'math', 'sqrt', [4])") == ("badrpc",
                                                                           "nodedown")
    assert a.eval("rpc.call('b@127.0.0.1', 'math', 'sqrt', [9])") == 3.0


@requires_erlang
def test_genserver_and_rpc_with_real_erlang(procs, real_epmd):
    py = PyNode(procs, "py@127.0.0.1")
    py.run(PINGPONG)
    erl = ErlNode(procs, "e@127.0.0.1")
    # Erlang calls the Python GenServer (its tag is [alias | Ref], echoed back exactly).
    assert erl.eval("gen_server:call({'PingPong', 'py@127.0.0.1'}, ping).") == "pong"
    assert erl.eval("catch gen_server:call({'Nobody', 'py@127.0.0.1'}, ping, 2000).")[1][0] \
        == "noproc"
    # Erlang's rpc reaches the Python rex server.
    assert erl.eval("rpc:call('py@127.0.0.1', math, sqrt, [16]).") == 4.0
    assert erl.eval("rpc:call('py@127.0.0.1', erlang, node, []).") == "py@127.0.0.1"
    assert erl.eval("rpc:call('py@127.0.0.1', math, sqrt, [-1]).")[0] == "badrpc"
    # Python calls Erlang: rpc, and a process that speaks gen_server's protocol.
    assert py.eval("rpc.call('e@127.0.0.1', 'erlang', 'node', [])") == "e@127.0.0.1"
    assert py.eval("rpc.call('e@127.0.0.1', 'lists', 'reverse', [[1, 2, 3]])") == [3, 2, 1]
    assert py.eval("rpc.call('e@127.0.0.1', 'erlang', 'no_such', [])")[0] == "badrpc"
    erl.eval("register(eserver, spawn(fun L() -> receive {'$gen_call', From, Req} -> "
             "gen_server:reply(From, {got, Req}), L() end end)).")
    assert py.eval("GenServer.call(('eserver', 'e@127.0.0.1'), 'hi')") == ("got", "hi")


def test_malformed_calls_do_not_crash_the_server(pair):
    a, b = pair
    # a '$gen_call' whose From is not {Pid, Tag} is not a call: it goes to handle_info
    a.run("ck.send(('PingPong', 'b@127.0.0.1'), (Atom('$gen_call'), 'not a from', 'ping'))")
    a.run("ck.send(('PingPong', 'b@127.0.0.1'), (Atom('$gen_cast'),))")
    assert a.eval("GenServer.call(('PingPong', 'b@127.0.0.1'), 'ping')") == "pong"
    assert b.eval("ck.whereis('PingPong') is not None") is True



@requires_erlang
def test_exit_signals_from_erlang(procs, real_epmd):
    """exit/2 from a real Erlang node: a trapping server sees {'EXIT', From, Reason};
    `kill` stops it all the same; a normal exit does not stop a non-trapping server."""
    py = PyNode(procs, "py@127.0.0.1")
    py.run(PINGPONG)
    py.run("class Trapper(GenServer):\n"
           "    trap_exit = True\n"
           "    def handle_info(self, message, state):\n"
           "        print('got', message[0], message[2])\n"
           "        return ('noreply', state)\n"
           "GenServer.start(Trapper, None, name='Trapper')")
    erl = ErlNode(procs, "e@127.0.0.1")

    def exit_from_erl(name, reason):
        pid = py.eval(f"ck.whereis({name!r})")
        erl.eval(f"exit(binary_to_term(base64:decode(<<\"{_b64(pid)}\">>)), {reason}), ok.")

    exit_from_erl("PingPong", "normal")
    exit_from_erl("Trapper", "custom")
    py.wait_log("got EXIT custom")
    assert py.eval("GenServer.call('PingPong', 'ping')") == "pong"
    exit_from_erl("Trapper", "kill")
    wait_for(lambda: py.eval("ck.whereis('Trapper')") is None, what="kill to stop it")
    exit_from_erl("PingPong", "shutdown")
    wait_for(lambda: py.eval("ck.whereis('PingPong')") is None, what="shutdown to stop it")


def _b64(term):
    import base64
    from clusterkit import etf
    return base64.b64encode(etf.encode(term)).decode()
