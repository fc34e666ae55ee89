"""The Gossip strategy in one process, with a fake socket, clock and random interval."""
from __future__ import annotations

import threading

import pytest

from clusterkit import Atom
from clusterkit.cluster import STRATEGIES, ConfigError, resolve_strategy
from clusterkit.cluster import gossip_wire as wire
from clusterkit.cluster.gossip import Gossip, SocketPlan, plan_socket
from conftest import wait_for
from test_cluster_base import Clock, Fake, log  # noqa: F401  (log is a fixture)

ME = "me@127.0.0.1"


class FakeSocket:
    def __init__(self, fail: int = 0):
        self.sent: list[tuple[bytes, tuple]] = []
        self.fail = fail          # the first `fail` sends raise, like a link that is down
        self.closed = False
        self.lock = threading.Lock()

    def sendto(self, data, addr):
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise OSError(101, "Network is unreachable")
            self.sent.append((data, addr))

    def close(self):
        self.closed = True


def make(config=None, fake=None, log=None, sock=None, rand=lambda: 1234, clock=None,
         self_node=ME):
    fake = fake or Fake()
    sock = sock or FakeSocket()
    plans = []

    def factory(plan):
        plans.append(plan)
        return sock

    g = Gossip("talkies", config or {}, self_node=self_node, log=log, **fake.kw(),
               socket_factory=factory, rand=rand, clock=clock or Clock())
    return g, fake, sock, plans


def test_registered_under_gossip_and_libclusters_module_name():
    assert STRATEGIES["gossip"] is Gossip
    assert resolve_strategy("t", "Cluster.Strategy.Gossip") is Gossip


def test_libcluster_defaults():
    g, *_ = make()
    assert g.config == {"port": 45892, "if_addr": "0.0.0.0", "multicast_addr": "233.252.1.32",
                        "multicast_if": None, "multicast_ttl": 1, "broadcast_only": False,
                        "secret": None}


def test_elixir_tuples_are_addresses():
    g, *_ = make({"if_addr": (0, 0, 0, 0), "multicast_addr": (230, 1, 1, 251)})
    assert g.config["multicast_addr"] == "230.1.1.251" and g.config["if_addr"] == "0.0.0.0"


@pytest.mark.parametrize("config, key, text", [
    ({"multicast_address": "230.1.1.251"}, "multicast_address", "did you mean 'multicast_addr'"),
    ({"ttl": 2}, "ttl", "did you mean 'multicast_ttl'"),
    ({"port": "45892"}, "port", "port must be a UDP port number"),
    ({"port": 0}, "port", "port must be a UDP port number"),
    ({"multicast_addr": "10.0.0.1"}, "multicast_addr", "is not a multicast address"),
    ({"multicast_addr": "233.252.1"}, "multicast_addr", "must be an IPv4 address"),
    ({"multicast_if": "lo"}, "multicast_if", "must be an IPv4 address"),
    ({"multicast_ttl": 256}, "multicast_ttl", "0-255"),
    ({"broadcast_only": "yes"}, "broadcast_only", "True or False"),
    ({"secret": 42}, "secret", "secret must be a string"),
])
def test_bad_config_names_the_key(config, key, text):
    with pytest.raises(ConfigError, match=text) as e:
        make(config)
    assert e.value.key == key and e.value.topology == "talkies"


def _cfg(**kw):
    g, *_ = make(kw)
    return g.config


def test_plan_for_a_loopback_node_binds_the_wildcard_and_uses_lo():
    assert plan_socket(_cfg(port=4000), self_loopback=True) == SocketPlan(
        bind="0.0.0.0", port=4000, target="233.252.1.32", group="233.252.1.32",
        interface="127.0.0.1", ttl=1)


def test_plan_for_a_networked_node_is_libclusters():
    p = plan_socket(_cfg(), self_loopback=False)
    assert (p.bind, p.interface, p.group) == ("0.0.0.0", "0.0.0.0", "233.252.1.32")
    p = plan_socket(_cfg(multicast_if="10.1.2.3"), self_loopback=True)
    assert p.interface == "10.1.2.3"


def test_plan_never_binds_a_loopback_address():
    # Bound to 127.0.0.1, a Linux socket hears no group datagrams.
    p = plan_socket(_cfg(if_addr="127.0.0.1"), self_loopback=False)
    assert (p.bind, p.interface) == ("0.0.0.0", "127.0.0.1")


def test_plan_broadcast_only_joins_no_group():
    p = plan_socket(_cfg(broadcast_only=True, multicast_addr="255.255.255.255"), False)
    assert p.group is None and p.target == "255.255.255.255"


def test_first_heartbeat_at_once_then_after_rand_ms():
    clock = Clock()
    g, fake, sock, plans = make({"port": 4000}, clock=clock, rand=lambda: 1234)
    g.start()
    try:
        wait_for(lambda: len(sock.sent) == 1, what="the first heartbeat")
        assert sock.sent[0] == (wire.encode(ME), ("233.252.1.32", 4000))
        assert plans[0].interface == "127.0.0.1"      # me@127.0.0.1 is a loopback node
        clock.t += 1.233
        g.worker.wake()
        wait_for(g.worker.idle, what="the worker to settle")
        assert len(sock.sent) == 1
        clock.t += 0.001
        g.worker.wake()
        wait_for(lambda: len(sock.sent) == 2, what="the second heartbeat")
    finally:
        g.stop()
    assert sock.closed


def test_heartbeats_are_encrypted_with_the_secret():
    g, fake, sock, _ = make({"secret": "s3cret"})
    g.start()
    try:
        wait_for(lambda: sock.sent, what="a heartbeat")
    finally:
        g.stop()
    packet = sock.sent[0][0]
    assert not packet.startswith(b"heartbeat::")
    assert wire.decode(packet, "s3cret") == ME


def test_a_failed_send_does_not_end_the_heartbeats(log):
    clock = Clock()
    g, fake, sock, _ = make(clock=clock, sock=FakeSocket(fail=1), log=log)
    g.start()
    try:
        wait_for(lambda: any("heartbeat not sent" in line for line in log.lines),
                 what="the failed send to be logged")
        clock.t += 2
        g.worker.wake()
        wait_for(lambda: len(sock.sent) == 1, what="the next heartbeat")
    finally:
        g.stop()


def test_a_socket_that_cannot_open_is_one_warning(log):
    def factory(plan):
        raise OSError(98, "Address already in use")
    g = Gossip("talkies", {}, self_node=ME, log=log, **Fake().kw(), socket_factory=factory)
    g.start()
    try:
        wait_for(lambda: log.lines, what="the warning")
    finally:
        g.stop()
    assert log.lines == ["WARNING [libcluster:talkies] cannot open the gossip socket on "
                         "0.0.0.0:45892: [Errno 98] Address already in use; not joining cluster"]


def test_a_heard_node_is_connected_once_and_never_disconnected(log):
    g, fake, sock, _ = make(log=log)
    g.start()
    try:
        for _ in range(5):
            g.datagram(wire.encode("b@127.0.0.1"), ("127.0.0.1", 1))
        wait_for(lambda: fake.up == {"b@127.0.0.1"}, what="the connect")
        wait_for(g.worker.idle, what="the worker to settle")
        fake.up.clear()            # b goes down; gossip does not disconnect anyone
        g.datagram(wire.encode("b@127.0.0.1"), ("127.0.0.1", 1))
        wait_for(lambda: fake.up == {"b@127.0.0.1"}, what="the reconnect")
        wait_for(g.worker.idle, what="the worker to settle")
    finally:
        g.stop()
    assert [c for c in fake.calls if c[0] == "disconnect"] == []
    assert [c for c in fake.calls if c[0] == "connect"] == [("connect", "b@127.0.0.1")] * 2
    assert [line for line in log.lines if line.startswith("INFO")] == [
        'INFO [libcluster:talkies] connected to :"b@127.0.0.1"'] * 2


def test_own_heartbeat_wrong_secret_and_garbage_are_dropped(log):
    g, fake, sock, _ = make({"secret": "one"}, log=log)
    g.start()
    try:
        g.datagram(wire.encode(ME, "one"), ("127.0.0.1", 1))
        g.datagram(wire.encode("b@127.0.0.1", "two"), ("127.0.0.1", 2))
        g.datagram(wire.encode("b@127.0.0.1"), ("127.0.0.1", 3))
        g.datagram(b"\x00" * 7, ("127.0.0.1", 4))
        wait_for(g.worker.idle, what="the worker to settle")
    finally:
        g.stop()
    assert fake.calls == []
    assert g.ignored == 3
    dropped = [line for line in log.lines if "ignored a datagram" in line]
    assert len(dropped) == 3 and all(line.startswith("DEBUG") for line in dropped)
    assert dropped[-1] == ("DEBUG [libcluster:talkies] ignored a datagram from 127.0.0.1:4: "
                           "not an encrypted heartbeat: 7 bytes is not a 16-byte IV plus "
                           "whole AES blocks")


def test_status_says_what_was_heard():
    g, fake, sock, _ = make({"port": 4000})
    g.start()
    try:
        g.datagram(wire.encode("b@127.0.0.1"))
        wait_for(lambda: fake.up, what="the connect")
        wait_for(lambda: g.status()["sent"] == 1, what="the heartbeat")
        st = g.status()
    finally:
        g.stop()
    assert st == {"strategy": "gossip", "running": True, "seen": [Atom("b@127.0.0.1")],
                  "connected": [Atom("b@127.0.0.1")], "sent": 1, "ignored": 0,
                  "group": "233.252.1.32:4000 via 127.0.0.1"}
