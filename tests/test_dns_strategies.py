"""DNS strategies: dns_poll (A/AAAA, host-name mode, several basenames, prune),
kubernetes_dns and kubernetes_dnssrv, against the kit's DNS server while records come
and go, with clusterkit nodes on several loopback addresses; and one address per node."""
from __future__ import annotations

import logging
import subprocess

import pytest

import clusterkit as ck
from clusterkit import Atom
from clusterkit import dns as ckdns
from clusterkit.cluster import ConfigError
from clusterkit.dns import hosts
from clusterkit.dns.client import LookupFailed
from conftest import HAVE_ERLANG, requires_erlang, wait_for
from nodes import ErlNode, PyNode
from test_cluster_base import Fake, log  # noqa: F401  (the fixture)

ZONE = """$ORIGIN lab.internal.
$TTL 1
@        IN SOA ns admin 1 60 60 600 1
@        IN NS  ns
ns       IN A   127.0.0.1
"""
K8S = """$ORIGIN cluster.local.
$TTL 1
@        IN SOA ns admin 1 60 60 600 1
@        IN NS  ns
ns       IN A   127.0.0.1
"""


@pytest.fixture
def dns_server(tmp_path):
    (tmp_path / "lab.internal.zone").write_text(ZONE)
    (tmp_path / "cluster.local.zone").write_text(K8S)
    with ckdns.ServerThread([tmp_path / "lab.internal.zone",
                             tmp_path / "cluster.local.zone"]) as srv:
        srv.at = ("127.0.0.1", srv.port)
        yield srv


def strategy(name, config, fake, log):
    from clusterkit.cluster import STRATEGIES
    return STRATEGIES[name]("t", config, connect=fake.connect, disconnect=fake.disconnect,
                            list_nodes=fake.list_nodes, self_node="app@127.0.0.9", log=log)


# ----------------------------------------------------------------- config and fakes

def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="'poll_interval'; did you mean 'polling_interval'"):
        ck.cluster.start({"t": {"strategy": "dns_poll", "config": {
            "query": "a.lab", "node_basename": "app", "poll_interval": 5000}}})
    with pytest.raises(ConfigError, match="needs config key 'node_basename'"):
        ck.cluster.start({"t": {"strategy": "dns_poll", "config": {"query": "a.lab"}}})
    with pytest.raises(ConfigError, match="resolver"):
        ck.cluster.start({"t": {"strategy": "dns_poll", "config": {
            "query": "a.lab", "node_basename": "app", "resolver": 42}}})
    with pytest.raises(ConfigError, match="node_basename"):
        ck.cluster.start({"t": {"strategy": "kubernetes_dnssrv", "config": {
            "service": "s", "namespace": "n", "application_name": "a",
            "node_basename": "x"}}})


def test_libclusters_module_names():
    from clusterkit.cluster import resolve_strategy, STRATEGIES
    assert resolve_strategy("t", "Cluster.Strategy.DNSPoll") is STRATEGIES["dns_poll"]
    assert resolve_strategy("t", "Cluster.Strategy.Kubernetes.DNS") is STRATEGIES["kubernetes_dns"]
    assert (resolve_strategy("t", "Elixir.Cluster.Strategy.Kubernetes.DNSSRV")
            is STRATEGIES["kubernetes_dnssrv"])


def test_defaults_are_libclusters(log):
    s = strategy("dns_poll", {"query": "q", "node_basename": "app",
                              "resolver": lambda q: []}, Fake(), log)
    assert s.config["polling_interval"] == 5000
    s = strategy("kubernetes_dnssrv", {"service": "s", "namespace": "n",
                                       "application_name": "a", "resolver": lambda q: []},
                 Fake(), log)
    assert s.query() == "s.n.svc.cluster.local."


def test_resolver_function_diff_prune_and_reconnect(log):
    answer = [(127, 0, 0, 2), "127.0.0.3"]
    fake = Fake()
    s = strategy("dns_poll", {"query": "q", "node_basename": ["app", "web"],
                              "resolver": lambda q: list(answer)}, fake, log)
    s._poll_once()
    assert sorted(fake.up) == ["app@127.0.0.2", "app@127.0.0.3", "web@127.0.0.2",
                               "web@127.0.0.3"]
    answer.pop(0)
    s._poll_once()
    assert sorted(fake.up) == ["app@127.0.0.3", "web@127.0.0.3"]
    assert "INFO [libcluster:t] disconnected from :\"app@127.0.0.2\"" in log.lines
    fake.up.discard(Atom("app@127.0.0.3"))          # it dropped: the next poll reconnects
    s._poll_once()
    assert Atom("app@127.0.0.3") in fake.up


def test_prune_false_keeps_nodes(log):
    answer = ["127.0.0.2"]
    fake = Fake()
    s = strategy("dns_poll", {"query": "q", "node_basename": "app", "prune": False,
                              "resolver": lambda q: list(answer)}, fake, log)
    s._poll_once()
    answer.clear()
    s._poll_once()
    assert fake.up == {Atom("app@127.0.0.2")}
    assert not [c for c in fake.calls if c[0] == "disconnect"]


def test_dns_failure_logs_once_per_change_and_polling_goes_on(log):
    state = {"fail": "SERVFAIL"}

    def resolver(q):
        if state["fail"]:
            raise LookupFailed(q, "A", state["fail"])
        return ["127.0.0.2"]
    fake = Fake()
    s = strategy("dns_poll", {"query": "q", "node_basename": "app", "resolver": resolver},
                 fake, log)
    for _ in range(3):
        s._poll_once()
    state["fail"] = "timeout"
    s._poll_once()
    s._poll_once()
    state["fail"] = None
    s._poll_once()
    warnings = [l for l in log.lines if l.startswith("WARNING")]
    assert len(warnings) == 2 and "SERVFAIL" in warnings[0] and "timeout" in warnings[1]
    assert any("DNS answers again" in l for l in log.lines)
    assert fake.up == {Atom("app@127.0.0.2")}


def test_the_lookups_against_the_kit_server(dns_server, log):
    at = dns_server.at
    for i in (2, 3):
        ckdns.add_record(at, "lab.internal", "app", "A", f"127.0.0.{i}")
        ckdns.add_record(at, "lab.internal", f"convoy{i}", "A", f"127.0.0.{i}")
        ckdns.add_record(at, "lab.internal", "convoy", "A", f"127.0.0.{i}")
        ckdns.add_record(at, "cluster.local", "app.default.svc", "SRV",
                         f"0 0 4369 app-{i}.app.default.svc.cluster.local.")
    ckdns.add_record(at, "lab.internal", "app", "AAAA", "::1")
    fake = Fake()
    s = strategy("dns_poll", {"query": "app.lab.internal", "node_basename": "app",
                              "resolver": at}, fake, log)
    assert sorted(s.names()) == ["app@127.0.0.2", "app@127.0.0.3", "app@::1"]
    s = strategy("dns_poll", {"query": "convoy.lab.internal", "node_basename": "convoy",
                              "resolver": at, "hostname": True}, fake, log)
    assert s.names() == ["convoy@convoy2.lab.internal", "convoy@convoy3.lab.internal"]
    s = strategy("kubernetes_dns", {"service": "app.lab.internal", "application_name": "app",
                                    "resolver": at}, fake, log)
    assert s.names() == ["app@127.0.0.2", "app@127.0.0.3"]           # A only
    s = strategy("kubernetes_dnssrv", {"service": "app", "namespace": "default",
                                       "application_name": "app", "resolver": at}, fake, log)
    assert s.names() == ["app@app-2.app.default.svc.cluster.local",
                         "app@app-3.app.default.svc.cluster.local"]
    s = strategy("dns_poll", {"query": "nobody.lab.internal", "node_basename": "app",
                              "resolver": at}, fake, log)
    with pytest.raises(LookupFailed, match="NXDOMAIN"):
        s.names()


# ----------------------------------------------------------------- real nodes

def _start(procs, name, dns_server, topology, **kw):
    node = PyNode(procs, name, resolver=dns_server.at, **kw)
    node.run("import clusterkit.cluster")
    node.run(f"ck.cluster.start({topology!r})")
    return node


def _listed(node):
    return sorted(str(n) for n in node.eval("Node.list()"))


def test_one_address_per_node_and_one_basename(procs, clusterkit_epmd, dns_server):
    a = PyNode(procs, "app@127.0.0.2")
    b = PyNode(procs, "app@127.0.0.3")
    assert a.eval("ck.node().listen_address") == "127.0.0.2"
    assert a.eval("Node.ping('app@127.0.0.3')") == "pong"
    assert _listed(b) == ["app@127.0.0.2"]


def test_dns_poll_forms_and_prunes_the_cluster(procs, clusterkit_epmd, dns_server):
    at = dns_server.at
    topo = {"dns": {"strategy": "dns_poll", "config": {
        "query": "app.lab.internal", "node_basename": "app", "polling_interval": 200,
        "resolver": at}}}
    nodes = {}
    for i in (2, 3, 4):
        ckdns.add_record(at, "lab.internal", "app", "A", f"127.0.0.{i}")   # it deploys
        nodes[i] = _start(procs, f"app@127.0.0.{i}", dns_server, topo)
    for i, node in nodes.items():
        want = sorted(f"app@127.0.0.{j}" for j in nodes if j != i)
        wait_for(lambda: _listed(node) == want, 20, what=f"app@127.0.0.{i} to see {want}")
    ckdns.delete_record(at, "lab.internal", "app", "A", "127.0.0.4")      # it leaves
    nodes[2].wait_log('[libcluster:dns] disconnected from :"app@127.0.0.4"', 20)
    nodes[3].wait_log('[libcluster:dns] disconnected from :"app@127.0.0.4"', 20)
    # Pruned by both, and the 4th's own poll no longer finds itself, so it stays out.
    wait_for(lambda: _listed(nodes[2]) == ["app@127.0.0.3"], 20, what="the pruned mesh")


def test_hostname_mode_like_the_convoy_text(procs, clusterkit_epmd, dns_server):
    at = dns_server.at
    topo = {"railway": {"strategy": "dns_poll", "config": {
        "query": "convoy.lab.internal", "node_basename": "convoy", "hostname": True,
        "polling_interval": 200, "resolver": at}}}
    nodes = []
    for i in (2, 3):
        ckdns.add_record(at, "lab.internal", f"convoy{i}", "A", f"127.0.0.{i}")
        ckdns.add_record(at, "lab.internal", "convoy", "A", f"127.0.0.{i}")
        nodes.append(_start(procs, f"convoy@convoy{i}.lab.internal", dns_server, topo))
    assert nodes[0].eval("ck.node().listen_address") == "127.0.0.2"
    wait_for(lambda: _listed(nodes[0]) == ["convoy@convoy3.lab.internal"], 20,
             what="the convoy nodes to connect by host name")


def test_kubernetes_dnssrv_like_a_headless_service(procs, clusterkit_epmd, dns_server):
    at = dns_server.at
    topo = {"k8s": {"strategy": "kubernetes_dnssrv", "config": {
        "service": "app", "namespace": "default", "application_name": "app",
        "polling_interval": 200, "resolver": at}}}
    nodes = []
    for i in (2, 3):
        pod = f"app-{i}.app.default.svc"
        ckdns.add_record(at, "cluster.local", pod, "A", f"127.0.0.{i}")
        ckdns.add_record(at, "cluster.local", "app.default.svc", "SRV",
                         f"0 0 4369 {pod}.cluster.local.")
        nodes.append(_start(procs, f"app@{pod}.cluster.local", dns_server, topo))
    wait_for(lambda: _listed(nodes[1]) == ["app@app-2.app.default.svc.cluster.local"], 20,
             what="the pods to connect")


def test_kubernetes_dns_a_records(procs, clusterkit_epmd, dns_server):
    at = dns_server.at
    topo = {"k8s": {"strategy": "kubernetes_dns", "config": {
        "service": "app-headless.default.svc.cluster.local", "application_name": "app",
        "polling_interval": 200, "resolver": at}}}
    nodes = []
    for i in (2, 3):
        ckdns.add_record(at, "cluster.local", "app-headless.default.svc", "A", f"127.0.0.{i}")
        nodes.append(_start(procs, f"app@127.0.0.{i}", dns_server, topo))
    wait_for(lambda: _listed(nodes[0]) == ["app@127.0.0.3"], 20, what="the pods to connect")


def test_same_name_on_a_real_epmd_is_explained(procs, real_epmd, dns_server):
    PyNode(procs, "app@127.0.0.2")
    with pytest.raises(AssertionError, match=r"epmd -address 127.0.0.3"):
        PyNode(procs, "app@127.0.0.3")


@requires_erlang
def test_real_erl_reaches_a_node_by_a_name_only_the_kit_dns_knows(procs, clusterkit_epmd,
                                                                dns_server, tmp_path):
    at = dns_server.at
    ckdns.add_record(at, "lab.internal", "convoy2", "A", "127.0.0.2")
    node = PyNode(procs, "convoy@convoy2.lab.internal", resolver=at)
    assert node.eval("ck.node().listen_address") == "127.0.0.2"
    inetrc = tmp_path / "inetrc"
    inetrc.write_text(hosts.inetrc(at))
    assert "{nameserver, {127,0,0,1}, %d}" % at[1] in inetrc.read_text()
    e = ErlNode(procs, "e@127.0.0.1", extra_args=("-kernel", "inetrc", f'"{inetrc}"'))
    assert e.eval("element(1, inet:gethostbyname(\"convoy2.lab.internal\"))") == "ok"
    assert e.eval("net_adm:ping('convoy@convoy2.lab.internal')") == "pong"
