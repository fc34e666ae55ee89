"""Gossip between node processes on one machine (loopback only), and with real Erlang."""
from __future__ import annotations

import os
import socket
import threading

import pytest

from conftest import requires_erlang, wait_for
from nodes import PyNode

ESCRIPT = os.path.join(os.path.dirname(__file__), "erl", "gossip_heartbeat.escript")
GROUP = "233.252.1.32"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def gossip_node(procs, name, port, secret=None, cookie="secret_token"):
    n = PyNode(procs, name, cookie=cookie)
    config = {"port": port, **({"secret": secret} if secret is not None else {})}
    n.run("import logging; logging.basicConfig(level=logging.INFO, format='%(message)s')")
    n.run(f"ck.cluster.start({{'gossip': {{'strategy': 'gossip', 'config': {config!r}}}}})")
    return n


def visible(n) -> list:
    return sorted(n.eval("Node.list()"))


def ignored(n) -> int:
    return n.eval("ck.cluster.status()['gossip']['ignored']")


def send_to_group(port, *packets):
    """Datagrams to the group on the loopback interface only."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        for p in packets:
            s.sendto(p, (GROUP, port))


def test_eight_nodes_converge_to_a_full_mesh(procs, clusterkit_epmd):
    port = free_udp_port()
    names = [f"g{i}@127.0.0.1" for i in range(8)]
    nodes = [gossip_node(procs, name, port) for name in names]
    for n in nodes:
        wait_for(lambda: visible(n) == sorted(set(names) - {n.name}), timeout=30,
                 what=f"{n.name} to see the seven others")
    # libcluster's lines, one per node this one dialled itself.
    assert any('[libcluster:gossip] connected to :"g' in line
               for n in nodes for line in n.lines)


def test_two_secrets_make_two_clusters_and_a_stranger_is_ignored(procs, clusterkit_epmd):
    port = free_udp_port()
    red = [gossip_node(procs, f"red{i}@127.0.0.1", port, secret="red") for i in range(3)]
    blue = [gossip_node(procs, f"blue{i}@127.0.0.1", port, secret="blue") for i in range(3)]
    stranger = gossip_node(procs, "stranger@127.0.0.1", port)
    for group in (red, blue):
        want = sorted(n.name for n in group)
        for n in group:
            wait_for(lambda: visible(n) == sorted(set(want) - {n.name}), timeout=30,
                     what=f"{n.name} to see its own cluster")
    # Everyone has now dropped heartbeats of the others (each beats every 5 s at most).
    for n in red + blue + [stranger]:
        wait_for(lambda: ignored(n) >= 4, timeout=30, what=f"{n.name} to drop strangers")
    for group in (red, blue):
        want = sorted(n.name for n in group)
        for n in group:
            assert visible(n) == sorted(set(want) - {n.name})
    assert visible(stranger) == []


def test_garbage_datagrams_are_ignored(procs, clusterkit_epmd):
    port = free_udp_port()
    a = gossip_node(procs, "a@127.0.0.1", port)
    before = ignored(a)
    send_to_group(port, b"", b"heartbeat::", b"heartbeat::\x83t\x00\x00\x00\x01",
                  b"heartbeat::" + b"\x83" + b"l\x00\x00\x00\x01" * 300,
                  b"heartbeat::\x83t\x00\x00\x00\x01w\x04nodew\x06nohost", os.urandom(1400))
    wait_for(lambda: ignored(a) >= before + 6, what="six datagrams to be dropped")
    # The node goes on: a newcomer is still found.
    b = gossip_node(procs, "b@127.0.0.1", port)
    wait_for(lambda: visible(a) == ["b@127.0.0.1"], timeout=30, what="a to find b")
    assert visible(b) == ["a@127.0.0.1"]


def test_a_killed_node_goes_down_and_a_restarted_one_rejoins(procs, clusterkit_epmd):
    port = free_udp_port()
    a = gossip_node(procs, "a@127.0.0.1", port)
    a.run("net_kernel.monitor_nodes(True)")
    b = gossip_node(procs, "b@127.0.0.1", port)
    wait_for(lambda: visible(a) == ["b@127.0.0.1"], timeout=30, what="a to find b")
    b.proc.kill()
    wait_for(lambda: visible(a) == [], timeout=30, what="a to see b go")
    b2 = gossip_node(procs, "b@127.0.0.1", port)
    wait_for(lambda: visible(a) == ["b@127.0.0.1"], timeout=30, what="b to rejoin")
    assert visible(b2) == ["a@127.0.0.1"]
    msgs = a.eval("[ck.receive(timeout=5) for _ in range(3)]")
    assert [tuple(m) for m in msgs] == [("nodeup", "b@127.0.0.1"), ("nodedown", "b@127.0.0.1"),
                                        ("nodeup", "b@127.0.0.1")]


# ------------------------------------------------------------------ real Erlang peers


class ErlGossip:
    """The escript's peer mode: a real distributed Erlang node gossiping like libcluster."""

    def __init__(self, procs, name, port, secret=None, cookie="secret_token"):
        self.name = name
        self.proc = procs.start(["escript", ESCRIPT, "peer", name, cookie, str(port), GROUP,
                                 secret or "-"])
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def has(self, line):
        return line in self.lines


@requires_erlang
@pytest.mark.parametrize("secret", [None, "s3cret"])
def test_real_erlang_gossips_with_clusterkit(procs, real_epmd, secret):
    port = free_udp_port()
    erl = ErlGossip(procs, "erl@127.0.0.1", port, secret)
    wait_for(lambda: erl.has("ready erl@127.0.0.1"), timeout=30, what="the erl peer")
    a = gossip_node(procs, "a@127.0.0.1", port, secret=secret)
    # Each side decoded the other's heartbeat: erl heard a, and a's strategy saw erl.
    wait_for(lambda: erl.has("heard a@127.0.0.1"), timeout=30, what="erl to hear a")
    wait_for(lambda: "erl@127.0.0.1" in a.eval("ck.cluster.status()['gossip']['seen']"),
             timeout=30, what="a to hear erl")
    wait_for(lambda: visible(a) == ["erl@127.0.0.1"], timeout=30, what="a connected to erl")
    wait_for(lambda: erl.has("nodeup a@127.0.0.1"), timeout=30, what="erl's nodeup")


@requires_erlang
def test_real_erlang_with_another_secret_stays_apart(procs, real_epmd):
    port = free_udp_port()
    erl = ErlGossip(procs, "erl@127.0.0.1", port, "other")
    wait_for(lambda: erl.has("ready erl@127.0.0.1"), timeout=30, what="the erl peer")
    a = gossip_node(procs, "a@127.0.0.1", port, secret="mine")
    wait_for(lambda: ignored(a) >= 3, timeout=30, what="a to drop erl's heartbeats")
    assert visible(a) == []
    assert not any(line.startswith("heard") for line in erl.lines)


def test_broadcast_only_on_the_loopback_broadcast_address(procs, clusterkit_epmd):
    port = free_udp_port()
    config = {"port": port, "broadcast_only": True, "multicast_addr": "127.255.255.255"}
    nodes = []
    for name in ("a@127.0.0.1", "b@127.0.0.1"):
        n = PyNode(procs, name)
        n.run(f"ck.cluster.start({{'gossip': {{'strategy': 'gossip', 'config': {config!r}}}}})")
        nodes.append(n)
    wait_for(lambda: visible(nodes[0]) == ["b@127.0.0.1"], timeout=30, what="a to find b")
    assert visible(nodes[1]) == ["a@127.0.0.1"]
