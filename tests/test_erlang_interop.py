"""clusterkit nodes against real Erlang/OTP nodes: the oracle for every claim."""
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import requires_erlang, wait_for
from nodes import ErlNode, PyNode

from clusterkit import Atom

pytestmark = requires_erlang

ECHO = ("register(echo, spawn(fun E() -> receive {From, T} -> From ! {echoed, T}, E() "
        "end end)), ok.")


@pytest.fixture
def py_and_erl(procs, real_epmd):
    py = PyNode(procs, "py@127.0.0.1")
    erl = ErlNode(procs, "e@127.0.0.1")
    return py, erl


def test_erl_pings_clusterkit_and_back(py_and_erl):
    py, erl = py_and_erl
    assert erl.eval("net_adm:ping('py@127.0.0.1').") == "pong"
    assert erl.eval("nodes().") == ["py@127.0.0.1"]
    wait_for(lambda: py.eval("Node.list()") == ["e@127.0.0.1"], what="py to see e")
    assert py.eval("Node.disconnect('e@127.0.0.1')") is True
    wait_for(lambda: erl.eval("nodes().") == [], what="erl to see the disconnect")
    assert py.eval("Node.ping('e@127.0.0.1')") == "pong"
    assert erl.eval("nodes().") == ["py@127.0.0.1"]


def test_messages_both_ways(py_and_erl):
    py, erl = py_and_erl
    erl.eval(ECHO)
    py.run("ck.send(('echo', 'e@127.0.0.1'), (ck.self(), {'k': [1, 2**70, -3.5, "
           "('t', Atom('x'))]}))")
    assert py.eval("ck.receive(timeout=10)") == (
        "echoed", {"k": [1, 2**70, -3.5, ("t", "x")]})
    py.run("ck.register('pybox', ck.self())")
    # (the agent reads its stdin as latin-1, so the non-ASCII text is built from code points)
    erl.eval("{pybox, 'py@127.0.0.1'} ! {hello, unicode:characters_to_binary([119, 246, 114, "
             "108, 100]), \"chars\", 3.0}.")
    assert py.eval("ck.receive(timeout=10)") == ("hello", "wörld", [99, 104, 97, 114, 115],
                                                  3.0)


def test_erlang_replies_to_a_python_pid(py_and_erl):
    py, erl = py_and_erl
    erl.eval("register(asker, spawn(fun() -> receive {P, Q} -> P ! {answer, Q * 2} end end)).")
    py.run("ck.send(('asker', 'e@127.0.0.1'), (ck.self(), 21))")
    assert py.eval("ck.receive(timeout=10)") == ("answer", 42)


def _terms():
    atoms = st.text(st.sampled_from("abcxyz_@ÅéΩ"), min_size=1, max_size=8).filter(
        lambda s: s not in ("true", "false", "nil")).map(Atom)
    scalars = st.one_of(
        atoms, st.text(max_size=20), st.binary(max_size=20),
        st.integers(min_value=-2**300, max_value=2**300),
        st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none())
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.tuples(inner, inner),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.one_of(atoms, st.integers(), st.text(max_size=5)), inner,
                        max_size=4)), max_leaves=20)


def _normal(term):
    """What a term looks like after a trip through Erlang: bytes that are UTF-8 read as str."""
    if isinstance(term, bytes):
        try:
            return term.decode("utf-8")
        except UnicodeDecodeError:
            return term
    if isinstance(term, list):
        return [_normal(t) for t in term]
    if isinstance(term, tuple):
        return tuple(_normal(t) for t in term)
    if isinstance(term, dict):
        return {_normal(k): _normal(v) for k, v in term.items()}
    return term


def test_generated_terms_survive_a_real_erlang_echo(procs, real_epmd):
    py = PyNode(procs, "py@127.0.0.1")
    erl = ErlNode(procs, "e@127.0.0.1")
    erl.eval(ECHO)
    py.run("import base64")

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(_terms())
    def roundtrip(term):
        import base64

        from clusterkit import etf
        blob = base64.b64encode(etf.encode(term)).decode()
        back = py.eval(
            f"ck.send(('echo', 'e@127.0.0.1'), (ck.self(), ck.etf.decode(base64.b64decode("
            f"'{blob}')))) and ck.receive(timeout=10)")
        assert back == ("echoed", _normal(term))

    roundtrip()


def test_wrong_cookie_pang_both_ways_and_the_acceptor_logs(procs, real_epmd):
    py = PyNode(procs, "py@127.0.0.1", cookie="python_side")
    erl = ErlNode(procs, "e@127.0.0.1", cookie="erlang_side")
    # Erlang accepts: it logs the line.
    assert py.eval("Node.ping('e@127.0.0.1')") == "pang"
    erl.wait_log("** Connection attempt from node 'py@127.0.0.1' rejected. "
                 "Invalid challenge reply. **")
    # clusterkit accepts: it logs the same line.
    assert erl.eval("net_adm:ping('py@127.0.0.1').") == "pang"
    py.wait_log("** Connection attempt from node 'e@127.0.0.1' rejected. "
                "Invalid challenge reply. **")
    assert erl.eval("nodes().") == []


def test_real_epmd_serves_clusterkit_nodes(procs, real_epmd):
    PyNode(procs, "py@127.0.0.1")
    out = subprocess.run(["epmd", "-port", str(real_epmd), "-names"], capture_output=True,
                         text=True, timeout=10).stdout
    assert "name py at port" in out


def test_clusterkit_epmd_serves_erl_nodes(procs, clusterkit_epmd):
    erl = ErlNode(procs, "e@127.0.0.1", extra_args=("-start_epmd", "false"))
    py = PyNode(procs, "py@127.0.0.1")
    assert py.eval("Node.ping('e@127.0.0.1')") == "pong"
    assert erl.eval("net_adm:names().")[0] == "ok"
    names = sorted(n for n, _port in erl.eval("element(2, net_adm:names()).")[:])
    assert names == [[101], [112, 121]]          # "e" and "py", as Erlang strings


def test_short_names_with_erl(procs, real_epmd):
    import socket
    host = socket.gethostname().split(".")[0]
    py = PyNode(procs, f"py@{host}")
    erl = ErlNode(procs, f"e@{host}")
    assert erl.eval(f"net_adm:ping('py@{host}').") == "pong"
    assert py.eval(f"Node.ping('e@{host}')") == "pong"
