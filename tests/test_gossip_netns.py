"""Gossip across three "hosts": network namespaces joined by a bridge (run as root).

Each host is a namespace with one veth whose other end sits on a bridge in a fourth
namespace, so nothing here touches the machine's own interfaces. Every namespace is
deleted afterwards, after the processes inside it are killed.
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys

import pytest

from conftest import wait_for
from nodes import PY_AGENT, PyNode, _Agent

HOSTS = 3
TICKTIME = 4      # seconds: nodedown after a link goes down comes within about this


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                          check=check)


def _skip_reason():
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


class NsNode(PyNode):
    """A clusterkit node process inside a network namespace."""

    def __init__(self, procs, ns, name, cookie="secret_token", **start_kw):
        proc = procs.start(["ip", "netns", "exec", ns, sys.executable, "-u", "-c", PY_AGENT],
                           stderr=subprocess.STDOUT)
        _Agent.__init__(self, proc, name)
        kw = "".join(f", {k}={v!r}" for k, v in start_kw.items())
        self.eval(f"ck.start({name!r}, cookie={cookie!r}{kw})")


@pytest.fixture
def lan(procs):
    """Three namespaces on one bridge: [(namespace, address, bridge port)], and the bridge's
    namespace; everything is removed afterwards."""
    tag = f"{os.getpid() % 10000}{random.randrange(100, 1000)}"
    subnet = random.randrange(1, 250)
    bridge_ns = f"ckbr{tag}"
    made = []
    try:
        r = _ip("netns", "add", bridge_ns, check=False)
        if r.returncode != 0:
            pytest.skip(f"cannot make a network namespace: {r.stderr.strip()}")
        made.append(bridge_ns)
        _ip("-n", bridge_ns, "link", "set", "lo", "up")
        _ip("-n", bridge_ns, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        _ip("-n", bridge_ns, "link", "set", "br0", "up")
        hosts = []
        for i in range(1, HOSTS + 1):
            ns = f"ckh{i}{tag}"
            _ip("netns", "add", ns)
            made.append(ns)
            port = f"p{i}"
            _ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port,
                "netns", bridge_ns)
            _ip("-n", bridge_ns, "link", "set", port, "master", "br0", "up")
            addr = f"10.201.{subnet}.{i}"
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", "eth0", "up")
            # Like a host's default route: multicast leaves by the LAN interface.
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
            hosts.append((ns, addr, port))
        yield hosts, bridge_ns
    finally:
        procs.close()            # nothing may keep a namespace alive
        for ns in reversed(made):
            _ip("netns", "del", ns, check=False)
        left = _ip("netns", "list", check=False).stdout
        assert not any(ns in left for ns in made), left


def test_gossip_forms_a_cluster_across_hosts_and_heals_after_a_link_outage(procs, lan,
                                                                          epmd_port):
    hosts, bridge_ns = lan
    nodes = []
    for i, (ns, addr, _port) in enumerate(hosts, 1):
        procs.start(["ip", "netns", "exec", ns, sys.executable, "-m", "clusterkit", "epmd",
                     "--port", str(epmd_port)], stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    for i, (ns, addr, _port) in enumerate(hosts, 1):
        wait_for(lambda: subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c",
             f"import socket; socket.create_connection(('127.0.0.1', {epmd_port}), 1)"],
            capture_output=True).returncode == 0, timeout=30, what=f"epmd in {ns}")
    names = [f"h{i}@{addr}" for i, (_ns, addr, _p) in enumerate(hosts, 1)]
    for (ns, addr, _p), name in zip(hosts, names):
        n = NsNode(procs, ns, name, net_ticktime=TICKTIME)
        n.run("net_kernel.monitor_nodes(True)")
        # libcluster's defaults: 233.252.1.32:45892, TTL 1, the group joined on any interface.
        n.run("ck.cluster.start({'lan': {'strategy': 'gossip'}})")
        nodes.append(n)

    def visible(n):
        return sorted(n.eval("Node.list()"))

    for n in nodes:
        wait_for(lambda: visible(n) == sorted(set(names) - {n.name}), timeout=30,
                 what=f"{n.name} to see the other hosts")
    assert nodes[0].eval("ck.cluster.status()['lan']['group']") == \
        "233.252.1.32:45892 via 0.0.0.0"

    # Unplug host 3.
    _ip("-n", bridge_ns, "link", "set", hosts[2][2], "down")
    for n in nodes[:2]:
        wait_for(lambda: visible(n) == sorted(set(names[:2]) - {n.name}),
                 timeout=6 * TICKTIME, what=f"{n.name} to lose h3")
    wait_for(lambda: visible(nodes[2]) == [], timeout=6 * TICKTIME, what="h3 to lose both")

    # Plug it back: the next heartbeats connect it again.
    _ip("-n", bridge_ns, "link", "set", hosts[2][2], "up")
    for n in nodes:
        wait_for(lambda: visible(n) == sorted(set(names) - {n.name}), timeout=30,
                 what=f"{n.name} to see all hosts again")

    def events(n):
        return [tuple(m) for m in n.eval("ck.flush()")]

    first = events(nodes[0])
    assert ("nodedown", names[2]) in first
    assert first[-1] == ("nodeup", names[2])
