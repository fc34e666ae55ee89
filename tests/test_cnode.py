"""C nodes (erl_interface, erl_call) and other peers OTP accepts: the sans-I/O half.

The flags below are what OTP 25's erl_call (erl_interface 5.3) offers, read off the wire
against a clusterkit node; its name is `c<N>@<short host>` even toward a long-name node.
"""
from clusterkit.dist import flags as F
from clusterkit.dist import handshake as hs
from clusterkit.etf import Atom, Pid
from clusterkit.runtime import cnode

ERL_CALL_FLAGS = 0x407074F9C


def pump(src, dst):
    return dst.receive_data(src.data_to_send())


def c_node_handshake(flags, name="c17@vm"):
    c = hs.Handshake(hs.Role.INITIATOR, name, 19203, peer_node="py@127.0.0.1",
                     cookie="secret", this_flags=flags, hidden=True)
    py = hs.Handshake(hs.Role.ACCEPTOR, "py@127.0.0.1", 22)
    return c, py


def test_erl_call_flag_set_is_what_otp_25_documents():
    assert F.names_of(ERL_CALL_FLAGS) == [
        "EXTENDED_REFERENCES", "DIST_MONITOR", "FUN_TAGS", "NEW_FUN_TAGS",
        "EXTENDED_PIDS_PORTS", "EXPORT_PTR_TAG", "BIT_BINARIES", "NEW_FLOATS",
        "SMALL_ATOM_TAGS", "UTF8_ATOMS", "MAP_TAG", "BIG_CREATION", "HANDSHAKE_23",
        "UNLINK_ID", "MANDATORY_25_DIGEST", "V4_NC"]
    assert not ERL_CALL_FLAGS & F.PUBLISHED          # a C node is hidden


def test_a_c_node_with_a_short_host_completes_the_handshake_with_a_long_name_node():
    c, py = c_node_handshake(ERL_CALL_FLAGS)
    (name,) = pump(c, py)
    assert name == hs.NameReceived("c17@vm", ERL_CALL_FLAGS, 19203)
    py.accept("secret")
    assert pump(py, c) == []
    (done_py,) = pump(c, py)
    (done_c,) = pump(py, c)
    assert isinstance(done_py, hs.Completed) and done_py.node == "c17@vm"
    assert isinstance(done_c, hs.Completed) and done_c.node == "py@127.0.0.1"
    assert not done_py.flags & F.PUBLISHED           # the connection is a hidden one
    assert done_py.flags & F.MANDATORY_25 == F.MANDATORY_25


def test_mandatory_25_digest_stands_for_the_whole_mandatory_set():
    # dist_util's expand_mandatory_25_flag: OTP 25 accepts a peer that sets only this bit.
    only = F.MANDATORY_25_DIGEST | F.UNLINK_ID | F.V4_NC
    assert F.expand(only) == only | F.MANDATORY_25
    assert F.expand(F.MANDATORY_25 & ~F.MAP_TAG) == F.MANDATORY_25 & ~F.MAP_TAG
    c, py = c_node_handshake(only)
    (name,) = pump(c, py)
    assert isinstance(name, hs.NameReceived) and name.flags & F.MAP_TAG
    py.accept("secret")
    pump(py, c)
    (done_py,) = pump(c, py)
    (done_c,) = pump(py, c)
    assert isinstance(done_py, hs.Completed) and isinstance(done_c, hs.Completed)
    assert done_py.flags & F.MANDATORY_25 == F.MANDATORY_25


def test_without_the_digest_bit_missing_flags_are_still_refused():
    c, py = c_node_handshake(ERL_CALL_FLAGS & ~F.MANDATORY_25_DIGEST & ~F.MAP_TAG)
    (failed,) = pump(c, py)
    assert isinstance(failed, hs.Failed)
    assert failed.log == ("** 'py@127.0.0.1': Connection attempt from node c17@vm "
                          'rejected since it cannot handle ["MAP_TAG"].**')
    assert py.data_to_send().endswith(b"snot_allowed")


def test_a_name_without_host_is_still_a_protocol_error():
    c, py = c_node_handshake(ERL_CALL_FLAGS, name="c17@")
    (failed,) = pump(c, py)
    assert isinstance(failed, hs.Failed) and failed.protocol_error


class _FakeNode:
    atom = Atom("py@127.0.0.1")


def test_erlang_only_calls_get_a_notsup_that_says_why():
    node = _FakeNode()
    text = cnode.erlang_only(node, Atom("erl_eval"), Atom("eval_str"))
    assert text == ("py@127.0.0.1 is a clusterkit node (Python): it cannot evaluate "
                    "Erlang source (erl_call -e). Call a Python function instead, "
                    "e.g. erl_call -a 'math sqrt [16]'")
    assert cnode.refusal(text) == ("badrpc", ("EXIT", ("notsup", [ord(c) for c in text])))
    assert "rpc:call('py@127.0.0.1', math, sqrt, [16])" in cnode.erlang_only(
        node, "shell", "start")
    assert cnode.erlang_only(node, "math", "sqrt") is None
    assert cnode.erlang_only(node, "c", "ls") is None


def test_plain_rex_call_shape():
    pid = Pid(Atom("c17@vm"), 1, 0, 3)
    assert cnode.is_plain_call((pid, (Atom("call"), Atom("math"), Atom("sqrt"), [16],
                                      Atom("user"))))
    assert not cnode.is_plain_call((pid, (Atom("call"), Atom("math"), Atom("sqrt"), [16])))
    assert not cnode.is_plain_call(("x", (Atom("call"), 1, 2, 3, 4)))
    assert cnode.is_remote_shell([Atom("ref"), Atom("shell"), Atom("start"), []])
    assert not cnode.is_remote_shell([Atom("ref"), Atom("math"), Atom("sqrt"), [16]])
