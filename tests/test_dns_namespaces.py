"""Several hosts: three network namespaces joined by a bridge (in a fourth), the DNS
server in one of them, and DNSPoll forming the cluster across them. Needs root."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid

import pytest

from clusterkit import dns as ckdns
from conftest import port_open, wait_for
from nodes import PY_AGENT, PyNode, _Agent

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 to make network namespaces")

SUBNET = "10.77.{}.{}"


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True,
                          timeout=20)


class NsNode(PyNode):
    def __init__(self, procs, ns, name):
        proc = procs.start(["ip", "netns", "exec", ns, sys.executable, "-u", "-c", PY_AGENT],
                           env={"ERL_EPMD_PORT": "4369"}, stderr=subprocess.STDOUT)
        _Agent.__init__(self, proc, name)
        self.eval(f"ck.start({name!r}, cookie='secret_token')")


@pytest.fixture
def hosts():
    tag = uuid.uuid4().hex[:6]
    net = int(tag[:2], 16) % 200 + 20
    bridge_ns = f"ck-br-{tag}"
    names = [f"ck-h{i}-{tag}" for i in range(3)]
    made = []
    try:
        for ns in [bridge_ns, *names]:
            ip("netns", "add", ns)
            made.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", bridge_ns, "link", "add", "br0", "type", "bridge")
        ip("-n", bridge_ns, "link", "set", "br0", "up")
        addresses = []
        for i, ns in enumerate(names):
            ip("-n", bridge_ns, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0",
               "netns", ns)
            ip("-n", bridge_ns, "link", "set", f"p{i}", "master", "br0", "up")
            address = SUBNET.format(net, i + 1)
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            addresses.append(address)
        yield list(zip(names, addresses))
    finally:
        for ns in made:
            # Our detached EPMD daemons live in there: end them by id, then the namespace.
            pids = ip("netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            ip("netns", "del", ns, check=False)


def test_dns_poll_across_three_hosts(hosts, procs, tmp_path):
    (dns_ns, dns_ip) = hosts[0]
    zone = tmp_path / "lab.internal.zone"
    zone.write_text("$ORIGIN lab.internal.\n$TTL 1\n@ IN SOA ns admin 1 60 60 600 1\n"
                    f"@ IN NS ns\nns IN A {dns_ip}\n"
                    + "".join(f"app IN A {a}\n" for _, a in hosts))
    procs.start(["ip", "netns", "exec", dns_ns, sys.executable, "-m", "clusterkit", "dns",
                 "--zone", str(zone), "--address", dns_ip, "--port", "5353"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes = []
    for ns, address in hosts:
        node = NsNode(procs, ns, f"app@{address}")
        node.run("import clusterkit.cluster")
        node.run("ck.cluster.start({'dns': {'strategy': 'dns_poll', 'config': {"
                 "'query': 'app.lab.internal', 'node_basename': 'app', "
                 f"'polling_interval': 200, 'resolver': ({dns_ip!r}, 5353)}}}}}})")
        nodes.append(node)
    for node, (_, address) in zip(nodes, hosts):
        want = sorted(f"app@{a}" for _, a in hosts if a != address)
        wait_for(lambda: sorted(str(n) for n in node.eval("Node.list()")) == want, 30,
                 what=f"app@{address} to see {want}")
