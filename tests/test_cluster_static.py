"""The static strategies: Epmd, LocalEpmd and ErlangHosts.

First with fake connect / names calls (what each strategy asks for), then against
clusterkit node processes and real `erl` nodes on loopback.
"""
from __future__ import annotations

import os
import re

import pytest

from clusterkit import Atom
from clusterkit.cluster import ConfigError
from clusterkit.cluster.epmd import Epmd
from clusterkit.cluster.erlang_hosts import ErlangHosts
from clusterkit.cluster.local_epmd import LocalEpmd
from conftest import private_logger, requires_erlang, wait_for
from nodes import ErlNode, PyNode


@pytest.fixture
def log():
    return private_logger("test.static")


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class Net:
    """Fake nodes: `alive` may connect; connect / list_nodes / names as a node sees them."""

    def __init__(self, alive=(), epmd=None):
        self.alive = set(alive)
        self.up: set[str] = set()
        self.tries: list[str] = []
        self.epmd = epmd or {}
        self.asked: list[str] = []

    def connect(self, n):
        self.tries.append(n)
        if n in self.alive:
            self.up.add(n)
            return True
        return False

    def names(self, host):
        self.asked.append(host)
        if host not in self.epmd:
            raise ConnectionRefusedError(f"no EPMD on {host}")
        return [(name, 4000 + i) for i, name in enumerate(self.epmd[host])]

    def kw(self):
        return {"connect": self.connect, "disconnect": lambda n: True,
                "list_nodes": lambda: sorted(self.up)}


def started(s):
    s.start()
    return s


@pytest.fixture
def stop_all():
    made = []
    yield made.append
    for s in made:
        s.stop()


# --------------------------------------------------------------------------- Epmd, fakes

def test_epmd_connects_its_hosts_once(stop_all, log):
    net = Net(alive={"a@127.0.0.1", "b@127.0.0.1"})
    s = Epmd("static", {"hosts": ["a@127.0.0.1", "b@127.0.0.1", "me@127.0.0.1"]},
             self_node="me@127.0.0.1", log=log, **net.kw())
    stop_all(s)
    started(s)
    wait_for(lambda: net.up == {"a@127.0.0.1", "b@127.0.0.1"}, what="both hosts")
    assert log.lines == ['INFO [libcluster:static] connected to :"a@127.0.0.1"',
                         'INFO [libcluster:static] connected to :"b@127.0.0.1"']
    assert s.config["timeout"] == "infinity"
    assert s.worker._timers == []                        # no second round


def test_epmd_with_no_hosts_starts_nothing(stop_all):
    net = Net()
    s = started(Epmd("static", {}, self_node="me@h", **net.kw()))
    stop_all(s)
    assert not s.running and net.tries == []


def test_epmd_timeout_joins_a_node_that_comes_up_later(stop_all, log):
    clock = Clock()
    net = Net(alive={"a@127.0.0.1"})
    s = Epmd("static", {"hosts": ["a@127.0.0.1", "b@127.0.0.1"], "timeout": 5000},
             self_node="me@127.0.0.1", log=log, clock=clock, **net.kw())
    stop_all(s)
    started(s)
    wait_for(lambda: len(log.lines) == 2 and s.worker.idle(), what="the first round")
    assert log.lines[1] == 'WARNING [libcluster:static] unable to connect to :"b@127.0.0.1"'
    net.alive.add("b@127.0.0.1")
    clock.t += 4.9
    s.worker.wake()
    assert net.tries.count("b@127.0.0.1") == 1
    clock.t += 0.1
    s.worker.wake()
    wait_for(lambda: "b@127.0.0.1" in net.up, what="the second round")
    assert log.lines[-1] == 'INFO [libcluster:static] connected to :"b@127.0.0.1"'
    assert net.tries.count("a@127.0.0.1") == 1           # already listed: not tried again


@pytest.mark.parametrize("config, message", [
    ({"hosts": "a@h,b@h"}, "hosts is a list of node names, not the string 'a@h,b@h'; to "
                           "read 'a@host,b@host' write 'a@h,b@h'.split(',')"),
    ({"hosts": ["a@h", "b"]}, "hosts[1]: 'b' is not a node name: it needs a host part"),
    ({"hosts": ["a@h"], "timeout": 0}, "timeout is in milliseconds: a positive number or "
                                       "'infinity', not 0"),
    ({"hosts": ["a@h"], "polling_interval": 10}, "no config key 'polling_interval'; did you "
                                                 "mean 'timeout'?"),
])
def test_epmd_config_errors(config, message):
    with pytest.raises(ConfigError) as e:
        Epmd("t", config, self_node="me@h", **Net().kw())
    assert message in str(e.value)


# --------------------------------------------------------------------------- LocalEpmd

def test_local_epmd_connects_every_local_name_with_this_host(stop_all, log):
    net = Net(alive={"a@127.0.0.1", "b@127.0.0.1"},
              epmd={"localhost": ["me", "a", "b"]})
    s = LocalEpmd("local", {}, self_node="me@127.0.0.1", log=log, names=net.names,
                  **net.kw())
    stop_all(s)
    started(s)
    wait_for(lambda: net.up == {"a@127.0.0.1", "b@127.0.0.1"}, what="a and b")
    assert net.asked == ["localhost"]
    assert sorted(net.tries) == ["a@127.0.0.1", "b@127.0.0.1"]


def test_local_epmd_has_no_config_keys():
    with pytest.raises(ConfigError, match=r"strategy local_epmd has no config key 'hosts'"):
        LocalEpmd("local", {"hosts": []}, self_node="me@h", **Net().kw())


# --------------------------------------------------------------------------- ErlangHosts

def hosts_file(directory, text):
    p = directory / ".hosts.erlang"
    p.write_text(text)
    return p


def test_erlang_hosts_without_a_file_warns_and_does_nothing(tmp_path, monkeypatch, log,
                                                            stop_all):
    monkeypatch.chdir(tmp_path)
    net = Net()
    s = started(ErlangHosts("eh", {}, self_node="me@h", log=log, names=net.names,
                            **net.kw()))
    stop_all(s)
    assert log.lines == ["WARNING [libcluster:eh] couldn't find .hosts.erlang file - not "
                         "joining cluster"]
    assert not s.running and net.asked == []


def test_erlang_hosts_reads_cwd_before_home(tmp_path, monkeypatch, _private_home, stop_all):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    hosts_file(_private_home, "'home.example'.\n")
    net = Net(alive={"a@home.example"}, epmd={"home.example": ["a"], "here.example": ["x"]})
    s = ErlangHosts("eh", {}, self_node="me@h", names=net.names, **net.kw())
    assert s.path == os.path.join(str(_private_home), ".hosts.erlang")
    hosts_file(work, "'here.example'.\n")
    s = ErlangHosts("eh", {}, self_node="me@h", names=net.names, **net.kw())
    assert s.path == os.path.join(".", ".hosts.erlang") and s.hosts == ["here.example"]


def test_erlang_hosts_asks_each_host_and_skips_unreachable_ones(tmp_path, stop_all, log):
    hosts_file(tmp_path, "'127.0.0.1'.\n'down.example'. % no EPMD there\n\"b.example\".\n")
    net = Net(alive={"a@127.0.0.1", "c@b.example"},
              epmd={"127.0.0.1": ["me", "a"], "b.example": ["c"]})
    s = ErlangHosts("eh", {}, self_node="me@127.0.0.1", log=log, names=net.names,
                    dirs=[str(tmp_path)], **net.kw())
    stop_all(s)
    started(s)
    wait_for(lambda: net.up == {"a@127.0.0.1", "c@b.example"}, what="a and c")
    assert net.asked == ["127.0.0.1", "down.example", "b.example"]
    assert "DEBUG [libcluster:eh] cannot list the nodes of down.example: no EPMD on " \
           "down.example" in log.lines


def test_erlang_hosts_name_match(tmp_path, stop_all):
    hosts_file(tmp_path, "'h'.\n")
    for match, want in [(Atom("a"), {"a@h"}), ("1", {"a1@h", "b1@h"}), (["a", "b"], {"a@h", "b@h"}),
                        (re.compile("^a"), {"a@h", "a1@h"}), (lambda n: n.endswith("1"), {"a1@h", "b1@h"})]:
        net = Net(alive={"a@h", "b@h", "a1@h", "b1@h"}, epmd={"h": ["a", "b", "a1", "b1"]})
        s = ErlangHosts("eh", {"name_match": match}, self_node="me@x", names=net.names,
                        dirs=[str(tmp_path)], **net.kw())
        assert set(s.discover()) == want, match


def test_erlang_hosts_timeout_asks_again(tmp_path, stop_all):
    hosts_file(tmp_path, "'h'.\n")
    clock = Clock()
    net = Net(alive={"a@h", "b@h"}, epmd={"h": ["a"]})
    s = ErlangHosts("eh", {"timeout": 1000}, self_node="me@x", names=net.names,
                    dirs=[str(tmp_path)], clock=clock, **net.kw())
    stop_all(s)
    started(s)
    wait_for(lambda: net.up == {"a@h"} and s.worker.idle(), what="the first round")
    net.epmd["h"].append("b")
    clock.t += 1
    s.worker.wake()
    wait_for(lambda: net.up == {"a@h", "b@h"}, what="b in the second round")


@pytest.mark.parametrize("text, where, reason", [
    ("'a'.\n'b'\n'c'.\n", "3:1", "expected '.' after the term but found 'c'"),
    ("'a'.\n  {x, y}.\n", "2:3", "expected a host name, like '127.0.0.1' or "
                                 "'host1.example.org', but found {x, y}"),
    ("my-host.example.\n", "1:3", "must be quoted: 'my-host.example'"),
])
def test_erlang_hosts_malformed_file_gives_file_line_column(tmp_path, text, where, reason):
    p = hosts_file(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        ErlangHosts("eh", {}, self_node="me@x", names=Net().names, dirs=[str(tmp_path)],
                    **Net().kw())
    assert str(e.value).startswith(f"topology eh: {p}:{where}: ")
    assert e.value.key == ".hosts.erlang" and e.value.path == str(p)
    if reason:
        assert str(e.value).endswith(reason)


# --------------------------------------------------------------------------- real nodes

def cluster_start(node, topology, strategy, config):
    node.run(f"ck.cluster.start({{{topology!r}: {{'strategy': {strategy!r}, "
             f"'config': {config!r}}}}})")


def nodes_of(node):
    return sorted(str(n) for n in node.eval("Node.list()"))


def test_epmd_strategy_between_clusterkit_nodes_with_a_late_peer(procs, clusterkit_epmd):
    PyNode(procs, "b@127.0.0.1")
    a = PyNode(procs, "a@127.0.0.1")
    cluster_start(a, "static", "epmd", {"hosts": ["b@127.0.0.1", "c@127.0.0.1"],
                                        "timeout": 200})
    a.wait_log('[libcluster:static] connected to :"b@127.0.0.1"')
    a.wait_log('[libcluster:static] unable to connect to :"c@127.0.0.1"')
    c = PyNode(procs, "c@127.0.0.1")
    a.wait_log('[libcluster:static] connected to :"c@127.0.0.1"')
    wait_for(lambda: nodes_of(a) == ["b@127.0.0.1", "c@127.0.0.1"], what="a's mesh")
    wait_for(lambda: nodes_of(c) == ["a@127.0.0.1", "b@127.0.0.1"], what="c's mesh")
    st = a.eval("ck.cluster.status()['static']")
    assert st["running"] and st["seen"] == ["b@127.0.0.1", "c@127.0.0.1"]
    a.run("ck.cluster.stop()")
    assert nodes_of(a) == ["b@127.0.0.1", "c@127.0.0.1"]     # stop keeps connections
    assert a.eval("ck.cluster.status()") == {}


def test_local_epmd_between_clusterkit_nodes(procs, clusterkit_epmd):
    a, b = PyNode(procs, "a@127.0.0.1"), PyNode(procs, "b@127.0.0.1")
    c = PyNode(procs, "c@127.0.0.1")
    assert nodes_of(b) == []
    cluster_start(c, "local", "local_epmd", {})
    c.wait_log('[libcluster:local] connected to :"a@127.0.0.1"')
    c.wait_log('[libcluster:local] connected to :"b@127.0.0.1"')
    wait_for(lambda: nodes_of(a) == ["b@127.0.0.1", "c@127.0.0.1"], what="the mesh")


def test_erlang_hosts_between_clusterkit_nodes(procs, clusterkit_epmd, tmp_path):
    hosts_file(tmp_path, "'127.0.0.1'.\n")
    a, b = PyNode(procs, "a@127.0.0.1"), PyNode(procs, "b@127.0.0.1")
    b.run(f"import os; os.chdir({str(tmp_path)!r})")
    cluster_start(b, "hosts", "erlang_hosts", {})
    b.wait_log('[libcluster:hosts] connected to :"a@127.0.0.1"')
    assert nodes_of(a) == ["b@127.0.0.1"]


@requires_erlang
def test_epmd_strategy_joins_real_erlang_nodes_including_a_late_one(procs, real_epmd):
    e1 = ErlNode(procs, "e1@127.0.0.1")
    py = PyNode(procs, "py@127.0.0.1")
    cluster_start(py, "static", "epmd", {"hosts": ["e1@127.0.0.1", "e2@127.0.0.1"],
                                         "timeout": 200})
    py.wait_log('[libcluster:static] connected to :"e1@127.0.0.1"')
    py.wait_log('[libcluster:static] unable to connect to :"e2@127.0.0.1"')
    e2 = ErlNode(procs, "e2@127.0.0.1")
    py.wait_log('[libcluster:static] connected to :"e2@127.0.0.1"')
    wait_for(lambda: sorted(e2.eval("nodes().")) == ["e1@127.0.0.1", "py@127.0.0.1"],
             what="e2 to see the whole cluster")
    assert sorted(e1.eval("nodes().")) == ["e2@127.0.0.1", "py@127.0.0.1"]


@requires_erlang
def test_local_epmd_and_erlang_hosts_find_real_erlang_nodes(procs, real_epmd, tmp_path):
    ErlNode(procs, "e1@127.0.0.1")
    ErlNode(procs, "e2@127.0.0.1")
    py = PyNode(procs, "py@127.0.0.1")
    cluster_start(py, "local", "local_epmd", {})
    py.wait_log('[libcluster:local] connected to :"e1@127.0.0.1"')
    py.wait_log('[libcluster:local] connected to :"e2@127.0.0.1"')
    hosts_file(tmp_path, "'127.0.0.1'.\n")
    q = PyNode(procs, "q@127.0.0.1")
    q.run(f"import os; os.chdir({str(tmp_path)!r})")
    cluster_start(q, "hosts", "erlang_hosts", {"name_match": "e"})
    wait_for(lambda: {"e1@127.0.0.1", "e2@127.0.0.1"} <= set(nodes_of(q)),
             what="q to join the Erlang nodes")
    assert 'connected to :"py@127.0.0.1"' not in q.log_text()       # name_match "e"


def test_a_topology_ends_when_ck_stop_ends_its_node(procs, clusterkit_epmd):
    a = PyNode(procs, "a@127.0.0.1")
    cluster_start(a, "static", "epmd", {"hosts": ["b@127.0.0.1"], "timeout": 100})
    a.wait_log('[libcluster:static] unable to connect to :"b@127.0.0.1"')
    a.run("ck.stop()")
    wait_for(lambda: a.eval("ck.cluster.status()['static']['running']") is False,
             what="the topology to end with its node")
