"""Safe defaults for a room of laptops on one Wi-Fi (issue 13): where a node listens,
who may connect (allow=), what may be called (rpc_allow=), constant-time digests."""
import hmac

import pytest

from clusterkit.dist import handshake as hs
from clusterkit.dns.hosts import listen_address
from conftest import requires_erlang
from nodes import ErlNode, PyNode

LISTENER = ("__import__('clusterkit.runtime.current', fromlist=['node']).node()"
            "._listener.getsockname()[0]")


@pytest.mark.parametrize("host, address", [
    ("127.0.0.1", "127.0.0.1"), ("127.0.0.7", "127.0.0.7"), ("192.168.1.20", "0.0.0.0"),
    ("10.0.0.1", "0.0.0.0"), ("localhost", "127.0.0.1"),
])
def test_listen_address(host, address):
    # main's rule (clusterkit/dns/hosts.py, issue 10), which issue 13 asks for
    assert listen_address(host) == address


def test_a_loopback_node_listens_on_its_address_only(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1")
    assert a.eval(LISTENER) == "127.0.0.1"
    b = PyNode(procs, "b@127.0.0.1", listen_address="0.0.0.0")
    assert b.eval(LISTENER) == "0.0.0.0"         # asked for: every interface
    assert a.eval("Node.ping('b@127.0.0.1')") == "pong"


def test_digests_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)
    monkeypatch.setattr(hmac, "compare_digest", spy)
    a = hs.Handshake(hs.Role.INITIATOR, "a@127.0.0.1", 1, peer_node="b@127.0.0.1", cookie="c")
    b = hs.Handshake(hs.Role.ACCEPTOR, "b@127.0.0.1", 2)
    b.receive_data(a.data_to_send())
    b.accept("c")
    a.receive_data(b.data_to_send())
    assert isinstance(b.receive_data(a.data_to_send())[0], hs.Completed)
    assert isinstance(a.receive_data(b.data_to_send())[0], hs.Completed)
    assert calls == [(16, 16), (16, 16)]          # the reply's digest, then the ack's


def test_allow_list_refuses_others_with_erlangs_log_line(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1", allow=["friend@127.0.0.1"])
    stranger = PyNode(procs, "stranger@127.0.0.1")
    friend = PyNode(procs, "friend@127.0.0.1")
    assert stranger.eval("Node.ping('a@127.0.0.1')") == "pang"
    a.wait_log("** Connection attempt from disallowed node stranger@127.0.0.1 ** ")
    assert friend.eval("Node.ping('a@127.0.0.1')") == "pong"
    assert a.eval("sorted(Node.list())") == ["friend@127.0.0.1"]


def test_allow_list_checks_its_names():
    import clusterkit as ck
    with pytest.raises(ValueError, match="allow: 'no at sign'"):
        ck.start("x@127.0.0.1", cookie="c", allow=["no at sign"])
    with pytest.raises(TypeError, match="list of node names"):
        ck.start("x@127.0.0.1", cookie="c", allow="b@127.0.0.1")


@requires_erlang
def test_allow_list_against_real_erl(procs, real_epmd):
    PyNode(procs, "py@127.0.0.1", allow=["ok@127.0.0.1"])
    bad = ErlNode(procs, "bad@127.0.0.1")
    assert bad.eval("net_adm:ping('py@127.0.0.1').") == "pang"
    ok = ErlNode(procs, "ok@127.0.0.1")
    assert ok.eval("net_adm:ping('py@127.0.0.1').") == "pong"


@requires_erlang
def test_rpc_allow_lists_the_only_callable_modules(procs, real_epmd):
    py = PyNode(procs, "py@127.0.0.1", rpc_allow=["math"])
    erl = ErlNode(procs, "e@127.0.0.1")
    assert erl.eval("rpc:call('py@127.0.0.1', math, sqrt, [16.0]).") == 4.0
    refused = erl.eval("rpc:call('py@127.0.0.1', os, getcwd, []).")
    # rpc:call goes through erpc here: {badrpc, {'EXIT', {{notsup, Reason}, Stack}}}
    assert refused[0] == "badrpc" and refused[1][0] == "EXIT"
    assert refused[1][1][0][0] == "notsup"
    reason = "".join(map(chr, refused[1][1][0][1]))
    assert reason == ("py@127.0.0.1 lets other nodes call only the modules in its rpc_allow "
                      "list (math), not os")
    py.wait_log("refused os:getcwd: py@127.0.0.1 lets other nodes call only")
    # erpc takes the same path
    err = erl.eval("try erpc:call('py@127.0.0.1', os, getcwd, []) catch C:R -> {C, R} end.")
    assert err[0] == "error" and err[1][0] == "exception" and err[1][1][0] == "notsup"


def test_log_limiter_lets_one_line_per_key_per_interval_and_counts_the_rest():
    from clusterkit.runtime.log_limit import LogLimiter, host_of
    now = [0.0]
    limiter = LogLimiter(interval=10, clock=lambda: now[0], max_keys=2)
    assert limiter.line("x", "refused") == "refused"
    assert [limiter.line("x", "refused") for _ in range(5)] == [None] * 5
    assert limiter.line("y", "refused") == "refused"          # another key: its own
    now[0] = 10.0
    assert limiter.line("x", "refused") == (
        "refused\n(5 more like this in the last 10 s were not logged)")
    limiter.line("z", "r")                                   # bound: y is forgotten
    assert limiter.line("y", "r") == "r"
    assert host_of("127.0.0.1:40123") == "127.0.0.1" and host_of(None) == "an unknown peer"


def test_a_flood_of_bad_cookies_logs_a_bounded_number_of_lines(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1")
    m = PyNode(procs, "m@127.0.0.1", cookie="wrong")
    assert m.eval("sum(Node.connect('a@127.0.0.1') is True for _ in range(200))",
                  timeout=120) == 0
    # Every attempt was refused, and only the first said so within the interval.
    assert a.eval("Node.ping('m@127.0.0.1')") == "pang"     # one more attempt, after
    assert 1 <= a.log_text().count("Invalid challenge") <= 2, a.log_text()[-2000:]
    assert "m@127.0.0.1" in a.log_text()


def test_the_cookie_never_shows_in_logs_reprs_or_errors(procs, clusterkit_epmd):
    secret = "s3cr3t_c00kie_value"
    a = PyNode(procs, "a@127.0.0.1", cookie=secret)
    m = PyNode(procs, "m@127.0.0.1", cookie="other_" + secret[::-1])
    assert m.eval("Node.connect('a@127.0.0.1')") is False
    a.run("import logging; logging.getLogger('clusterkit').setLevel(logging.DEBUG)")
    assert m.eval("Node.connect('a@127.0.0.1')") is False
    shown = a.eval("repr(__import__('clusterkit.runtime.current', fromlist=['node']).node())"
                   " + repr(ck.self()) + repr(list(__import__('clusterkit.runtime.current',"
                   " fromlist=['node']).node().connections.values()))")
    assert secret not in shown
    assert secret not in a.log_text() and secret[::-1] not in m.log_text()
