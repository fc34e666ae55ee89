"""The real `erl_call` (erl_interface, in erlang-base) against a clusterkit node, side by
side with a real OTP node: same output, same errors. Also a short-name peer dialling a
long-name node (accepted, as OTP accepts it) and `erl -remsh`'s refusal."""
import re
import shutil
import socket
import subprocess

import pytest

from conftest import requires_erlang, wait_for
from nodes import ErlNode, PyNode

from clusterkit.dist import flags as F
from clusterkit.dist import handshake as hs
from clusterkit.epmd.client import port_please_sync

ERL_CALL = shutil.which("erl_call")
pytestmark = [requires_erlang, pytest.mark.skipif(
    ERL_CALL is None, reason="erl_call not found: it ships with erlang-base "
    "(lib/erl_interface-*/bin/erl_call)")]


def erl_call(node, *args, cookie="secret_token", stdin=None):
    """Run erl_call once; its own -timeout and ours keep a broken peer from hanging us."""
    done = subprocess.run([ERL_CALL, "-timeout", "20", "-name", node, "-c", cookie, *args],
                          input=stdin, capture_output=True, text=True, timeout=30)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def py_and_erl(procs, real_epmd):
    return PyNode(procs, "py@127.0.0.1"), ErlNode(procs, "e@127.0.0.1")


def test_apply_prints_what_it_prints_for_erlang(py_and_erl):
    assert erl_call("py@127.0.0.1", "-a", "math sqrt [16]") == (0, "4.000000", "")
    assert erl_call("e@127.0.0.1", "-a", "math sqrt [16]") == (0, "4.000000", "")


def test_apply_erlang_node(py_and_erl):
    assert erl_call("py@127.0.0.1", "-a", "erlang node []") == (0, "'py@127.0.0.1'", "")
    assert erl_call("e@127.0.0.1", "-a", "erlang node []") == (0, "'e@127.0.0.1'", "")


def test_apply_of_a_missing_function_is_a_badrpc(py_and_erl):
    rc, out, _ = erl_call("py@127.0.0.1", "-a", "nosuch mod [1]")
    assert rc == 0 and out.startswith("{badrpc, {'EXIT', {undef, [{nosuch, mod, ")


def test_wrong_cookie_fails_and_the_node_logs_its_usual_line(py_and_erl):
    py, erl = py_and_erl
    for node, agent in (("py@127.0.0.1", py), ("e@127.0.0.1", erl)):
        rc, out, err = erl_call(node, "-a", "erlang node []", cookie="wrong")
        assert rc != 0 and out == ""
        assert f"failed to connect to node {node}" in err
        line = agent.wait_log("Invalid challenge reply")
        assert re.search(r"\*\* Connection attempt from node c\d+@\S+ rejected\. "
                         r"Invalid challenge reply\. \*\*$", line), line


def test_eval_gets_a_clear_refusal(py_and_erl):
    rc, out, _ = erl_call("py@127.0.0.1", "-e", stdin="X = 1, X + 1.\n")
    assert rc == 0
    assert out == ("{badrpc, {'EXIT', {notsup, \"py@127.0.0.1 is a clusterkit node "
                   "(Python): it cannot evaluate Erlang source (erl_call -e). Call a "
                   "Python function instead, e.g. erl_call -a 'math sqrt [16]'\"}}}")
    assert erl_call("e@127.0.0.1", "-e", stdin="X = 1, X + 1.\n") == (0, "{ok, 2}", "")


def test_the_node_goes_on_after_c_nodes(py_and_erl):
    py, erl = py_and_erl
    for _ in range(3):
        assert erl_call("py@127.0.0.1", "-a", "math sqrt [16]")[1] == "4.000000"
    assert erl.eval("net_adm:ping('py@127.0.0.1').") == "pong"
    assert py.eval("Node.list()") == ["e@127.0.0.1"]         # C nodes are hidden


def test_a_visible_short_name_peer_may_dial_a_long_name_node(procs, real_epmd):
    """OTP's acceptor does not check the name kind (only the dialler does): a peer
    calling itself s@shorthost is let in, visible, like erl_call's hidden one."""
    py = PyNode(procs, "py@127.0.0.1")
    port = port_please_sync("127.0.0.1", "py").port
    me = hs.Handshake(hs.Role.INITIATOR, "s@shorthost", 7, peer_node="py@127.0.0.1",
                      cookie="secret_token", this_flags=F.OFFERED)
    events = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(me.data_to_send())
        while not any(isinstance(e, (hs.Completed, hs.Failed)) for e in events):
            data = sock.recv(4096)
            if not data:
                events.append(me.connection_lost())
                break
            events += me.receive_data(data)
            sock.sendall(me.data_to_send())
        assert isinstance(events[-1], hs.Completed), events
        wait_for(lambda: py.eval("Node.list()") == ["s@shorthost"],
                 what="py to list the short-name peer")


def test_remsh_is_told_why_there_is_no_shell(procs, real_epmd):
    """What `erl -remsh py@127.0.0.1` does, without a terminal: its group process, its
    own group leader, runs rpc:call(Node, shell, start, []), links to the pid it gets
    and serves I/O requests. The refusal arrives as a put_chars, then the shell ends."""
    py = PyNode(procs, "py@127.0.0.1")
    erl = ErlNode(procs, "r@127.0.0.1")
    got = erl.eval(
        "Me = self(), spawn(fun() -> group_leader(self(), self()), process_flag(trap_exit, "
        "true), Shell = rpc:call('py@127.0.0.1', shell, start, []), link(Shell), "
        "Text = receive {io_request, _, _, {put_chars, unicode, T}} -> T after 10000 -> "
        "none end, Exit = receive {'EXIT', Shell, R} -> R after 10000 -> none end, "
        "Me ! {node(Shell), Text, Exit} end), receive M -> M after 20000 -> timeout end.")
    node, text, exit_reason = got
    assert node == "py@127.0.0.1" and exit_reason in ("noproc", "notsup")
    assert text == ("*** py@127.0.0.1 is a clusterkit node (Python): it has no Erlang "
                    "shell to offer (erl -remsh). Use a shell of your own and rpc, e.g. "
                    "rpc:call('py@127.0.0.1', math, sqrt, [16])\n")
    py.wait_log("r@127.0.0.1 asked for a remote shell (erl -remsh)")
