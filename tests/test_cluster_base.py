"""ck.cluster's shared base and supervisor, with fake connect / list_nodes calls."""
from __future__ import annotations

import shutil
import subprocess
import threading

import pytest

import clusterkit as ck
from clusterkit import Atom
from clusterkit.cluster import base
from clusterkit.cluster.base import REQUIRED, ConfigError, Strategy, Worker, inspect_atom
from conftest import private_logger, wait_for


@pytest.fixture
def log():
    return private_logger("test.cluster")


class Fake:
    """A node's connect / disconnect / list_nodes, recorded."""

    def __init__(self, up=(), refuse=(), ignore=()):
        self.up = {Atom(n) for n in up}
        self.refuse = {Atom(n) for n in refuse}
        self.ignore = {Atom(n) for n in ignore}
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def connect(self, n):
        with self.lock:
            self.calls.append(("connect", n))
            if n in self.ignore:
                return Atom("ignored")
            if n in self.refuse:
                return False
            self.up.add(n)
            return True

    def disconnect(self, n):
        with self.lock:
            self.calls.append(("disconnect", n))
            if n in self.up:
                self.up.discard(n)
                return True
            return False

    def list_nodes(self):
        with self.lock:
            return sorted(self.up)

    def kw(self):
        return {"connect": self.connect, "disconnect": self.disconnect,
                "list_nodes": self.list_nodes}


class Plain(Strategy):
    name = "plain"
    defaults = {"hosts": [], "polling_interval": 5000, "query": None}
    aliases = {"poll_interval": "polling_interval"}


class Needs(Strategy):
    name = "needs"
    defaults = {"query": REQUIRED, "node_basename": REQUIRED}


def make(cls=Plain, config=None, fake=None, log=None, **kw):
    fake = fake or Fake()
    return cls("talkies", config or {}, self_node="me@127.0.0.1", log=log, **fake.kw(),
               **kw), fake


# --------------------------------------------------------------------------- inspect

@pytest.mark.parametrize("atom, shown", [
    ("a@127.0.0.1", ':"a@127.0.0.1"'), ("app1@computer", ":app1@computer"), ("a", ":a"),
    ("Foo", ":Foo"), ("Elixir.Foo.Bar", "Foo.Bar"), ("foo-bar", ':"foo-bar"'),
    ("_x", ":_x"), ("a?", ":a?"), ("a?b", ':"a?b"'), ("nil", "nil"), ("true", "true"),
    ("", ':""'), ('with"q', ':"with\\"q"'), ("1a", ':"1a"'), ("é", ":é"),
    ("A@b", ":A@b"), ("a@b-c", ':"a@b-c"'), ("+", ":+"), ("a.b", ':"a.b"'),
])
def test_inspect_atom_like_elixir(atom, shown):
    assert inspect_atom(Atom(atom)) == shown


@pytest.mark.skipif(shutil.which("elixir") is None, reason="elixir is not installed")
def test_inspect_atom_agrees_with_real_elixir():
    atoms = ["a@127.0.0.1", "app1@computer", "a", "Foo", "Elixir.Foo.Bar", "foo-bar",
             "_x", "a?", "nil", "", "1a", "A@b", "a@b-c", "b@my-host.local", "api@localhost"]
    script = "".join(f'IO.puts(inspect(String.to_atom({a!r})))\n'.replace("'", '"')
                     for a in atoms)
    out = subprocess.run(["elixir", "-e", script], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    assert out == [inspect_atom(a) for a in atoms]


# --------------------------------------------------------------------------- connect

def test_connect_nodes_logs_libcluster_lines(log):
    s, fake = make(log=log, fake=Fake(up=["b@127.0.0.1"], refuse=["c@127.0.0.1"],
                                      ignore=["d@127.0.0.1"]))
    bad = s.connect_nodes(["me@127.0.0.1", "d@127.0.0.1", "a@127.0.0.1", "b@127.0.0.1",
                           "c@127.0.0.1", "app1@computer"])
    # sorted, as libcluster's MapSet difference iterates
    assert [c for _, c in fake.calls] == ["a@127.0.0.1", "app1@computer", "c@127.0.0.1",
                                          "d@127.0.0.1"]
    assert log.lines == [
        'INFO [libcluster:talkies] connected to :"a@127.0.0.1"',
        "INFO [libcluster:talkies] connected to :app1@computer",
        'WARNING [libcluster:talkies] unable to connect to :"c@127.0.0.1"',
        'WARNING [libcluster:talkies] unable to connect to :"d@127.0.0.1": not part of network',
    ]
    assert bad == [(Atom("c@127.0.0.1"), False), (Atom("d@127.0.0.1"), Atom("ignored"))]


def test_connect_nodes_with_nothing_new_connects_nothing(log):
    s, fake = make(log=log, fake=Fake(up=["a@127.0.0.1"]))
    assert s.connect_nodes(["me@127.0.0.1", "a@127.0.0.1", "a@127.0.0.1"]) == []
    assert fake.calls == [] and log.lines == []


def test_a_connect_that_raises_is_one_bad_node(log):
    def connect(n):
        raise OSError("no route to host")
    s = Plain("t", {}, self_node="me@h", connect=connect, disconnect=lambda n: True,
              list_nodes=lambda: [], log=log)
    assert s.connect_nodes(["x@h"])[0][0] == "x@h"
    assert log.lines == ["WARNING [libcluster:t] unable to connect to :x@h: no route to host"]


def test_disconnect_nodes_only_listed_ones(log):
    s, fake = make(log=log, fake=Fake(up=["a@127.0.0.1", "b@127.0.0.1"]))
    s.connect_nodes(["a@127.0.0.1", "b@127.0.0.1"])
    assert s.disconnect_nodes(["a@127.0.0.1", "z@127.0.0.1", "me@127.0.0.1"]) == []
    assert fake.calls == [("disconnect", "a@127.0.0.1")]
    assert log.lines == ['INFO [libcluster:talkies] disconnected from :"a@127.0.0.1"']
    assert s.status() == {"strategy": "plain", "running": False,
                          "seen": [Atom("b@127.0.0.1")], "connected": [Atom("b@127.0.0.1")]}


def test_disconnect_reasons_are_libclusters(log):
    answers = {"a@h": False, "b@h": Atom("ignored"), "c@h": "busy"}
    s = Plain("t", {}, self_node="me@h", connect=lambda n: True,
              disconnect=lambda n: answers[n], list_nodes=lambda: list(answers), log=log)
    assert s.disconnect_nodes(["a@h", "b@h", "c@h"]) == [(Atom("c@h"), "busy")]
    assert log.lines == [
        "WARNING [libcluster:t] disconnect from :a@h failed because we're already disconnected",
        "WARNING [libcluster:t] disconnect from :b@h failed because it is not part of the network",
        "WARNING [libcluster:t] disconnect from :c@h failed with: 'busy'",
    ]


def test_default_logger_is_clusterkit_cluster():
    s, _ = make()
    assert s.log.name == "clusterkit.cluster"


# --------------------------------------------------------------------------- config

def test_defaults_fill_config():
    s, _ = make(config={"hosts": ["a@h"]})
    assert s.config == {"hosts": ["a@h"], "polling_interval": 5000, "query": None}


def test_misspelt_key_names_the_right_one():
    with pytest.raises(ConfigError) as e:
        make(config={"poll_interval": 1000})
    assert e.value.key == "poll_interval" and e.value.topology == "talkies"
    assert str(e.value) == ("topology talkies: strategy plain has no config key "
                            "'poll_interval'; did you mean 'polling_interval'? "
                            "(known keys: hosts, polling_interval, query)")


def test_close_key_is_suggested():
    with pytest.raises(ConfigError, match="'hostz'; did you mean 'hosts'"):
        make(config={"hostz": []})


def test_unknown_key_without_a_guess():
    with pytest.raises(ConfigError, match=r"no config key 'zzz' \(known keys"):
        make(config={"zzz": 1})


def test_missing_required_key():
    with pytest.raises(ConfigError) as e:
        make(Needs, config={"query": "app.local"})
    assert str(e.value) == "topology talkies: strategy needs needs config key 'node_basename'"
    assert e.value.key == "node_basename"


def test_config_must_be_a_dict():
    with pytest.raises(ConfigError, match="config must be a dict"):
        make(config=[("hosts", [])])


# --------------------------------------------------------------------------- worker

class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_worker_runs_jobs_in_order_and_timers_when_due():
    clock = Clock()
    w = Worker("w", clock)
    done = []
    w.start()
    try:
        w.call_later(5, done.append, "timer")
        w.submit(done.append, 1)
        w.submit(done.append, 2)
        assert w.wait_idle(10)
        assert done == [1, 2] and w.idle()
        clock.t += 5
        w.wake()
        wait_for(lambda: done == [1, 2, "timer"], what="the timer")
    finally:
        w.stop()
    assert not w.running


def test_worker_queue_is_bounded_and_drops_when_full():
    gate = threading.Event()
    w = Worker("w", limit=3)
    w.start()
    try:
        w.submit(gate.wait, 10)
        wait_for(lambda: not w._jobs, what="the first job to start")
        assert [w.submit(print) for _ in range(4)] == [True, True, True, False]
    finally:
        gate.set()
        w.stop()


def test_cancelled_timer_does_not_run():
    clock = Clock()
    w = Worker("w", clock)
    ran = []
    w.start()
    try:
        t = w.call_later(1, ran.append, "x")
        t.cancel()
        w.call_later(2, ran.append, "y")
        clock.t += 3
        w.wake()
        wait_for(lambda: ran == ["y"], what="the second timer")
    finally:
        w.stop()


def test_a_failing_job_is_logged_and_the_worker_goes_on(log):
    w = Worker("w", log=log)
    done = []
    w.start()
    try:
        w.submit(lambda: 1 / 0)
        w.submit(done.append, "after")
        wait_for(lambda: done == ["after"], what="the next job")
    finally:
        w.stop()
    assert any("w: <lambda> failed" in line for line in log.lines)


# --------------------------------------------------------------------------- supervisor

class Recorder(Strategy):
    name = "recorder"
    defaults = {"hosts": [], "timeout": "infinity"}

    def init(self):
        self.connect_nodes(self.config["hosts"])


@pytest.fixture
def registered():
    base.STRATEGIES["recorder"] = Recorder
    yield
    ck.cluster.stop()
    del base.STRATEGIES["recorder"]


def test_start_with_strategy_as_string_and_class(registered, log):
    fake = Fake()
    ck.cluster.start({
        "one": {"strategy": "recorder", "config": {"hosts": ["a@h"]}, **fake.kw()},
        "two": {"strategy": Recorder, "config": {"hosts": ["b@h"]}, **fake.kw()},
    })
    # start returns after each strategy's first round (init), as libcluster's does
    assert sorted(fake.up) == ["a@h", "b@h"]
    st = ck.cluster.status()
    assert list(st) == ["one", "two"]
    assert st["one"] == {"strategy": "recorder", "running": True, "seen": ["a@h"],
                         "connected": ["a@h"]}
    ck.cluster.stop("one")
    assert list(ck.cluster.status()) == ["two"]
    assert sorted(fake.up) == ["a@h", "b@h"]      # stop leaves connections as they are


def test_libcluster_module_names_are_accepted(registered):
    assert ck.cluster.resolve_strategy("t", "Cluster.Strategy.Recorder") is Recorder
    assert ck.cluster.resolve_strategy("t", "Elixir.Cluster.Strategy.Recorder") is Recorder


def test_unknown_strategy(registered):
    with pytest.raises(ConfigError) as e:
        ck.cluster.start({"t": {"strategy": "recordr"}})
    assert e.value.key == "strategy"
    assert "topology t: unknown strategy 'recordr'; did you mean 'recorder'?" in str(e.value)
    assert "known strategies:" in str(e.value)


def test_strategy_class_must_be_a_strategy(registered):
    with pytest.raises(ConfigError, match="not a ck.cluster.Strategy subclass"):
        ck.cluster.start({"t": {"strategy": dict}})


def test_missing_strategy_key(registered):
    with pytest.raises(ConfigError, match="topology t: missing key 'strategy'"):
        ck.cluster.start({"t": {"config": {}}})


def test_misspelt_topology_key(registered):
    with pytest.raises(ConfigError, match="unknown topology key 'strategy_opts'; did you "
                                          "mean 'config'"):
        ck.cluster.start({"t": {"strategy": "recorder", "strategy_opts": {}}})
    with pytest.raises(ConfigError, match="unknown topology key 'conect'; did you mean "
                                          "'connect'"):
        ck.cluster.start({"t": {"strategy": "recorder", "conect": print}})


def test_callables_must_be_callable(registered):
    with pytest.raises(ConfigError, match="topology t: connect must be a function"):
        ck.cluster.start({"t": {"strategy": "recorder", "connect": "net_kernel"}})


class Slow(Strategy):
    name = "slow"

    def init(self):
        self.gate.wait(10)


def test_start_without_waiting(registered):
    gate = threading.Event()
    Slow.gate = gate
    try:
        ck.cluster.start({"s": {"strategy": Slow, **Fake().kw()}}, wait=False)
        assert not ck.cluster.running("s").worker.idle()
    finally:
        gate.set()


def test_one_bad_topology_starts_none(registered):
    with pytest.raises(ConfigError, match="topology bad"):
        ck.cluster.start({"good": {"strategy": "recorder"},
                          "bad": {"strategy": "recorder", "config": {"hots": []}}})
    assert ck.cluster.status() == {}


def test_a_running_topology_cannot_start_twice(registered):
    ck.cluster.start({"t": {"strategy": "recorder", **Fake().kw()}})
    with pytest.raises(ConfigError, match="already running"):
        ck.cluster.start({"t": {"strategy": "recorder"}})


def test_stop_of_an_unknown_topology(registered):
    with pytest.raises(ConfigError, match="no topology of that name is running"):
        ck.cluster.stop("nope")


def test_topologies_must_be_a_dict():
    with pytest.raises(ConfigError, match="takes a dict of topologies"):
        ck.cluster.start([("t", {})])


def test_default_calls_without_a_node_are_ignored(registered, log):
    """Not distributed: Node.connect answers ignored, as net_kernel does in libcluster."""
    ck.cluster.start({"t": {"strategy": "recorder"}})
    s = ck.cluster.running("t")
    s.log = log
    s.worker.log = log
    assert s.connect_nodes(["b@h"]) == [(Atom("b@h"), Atom("ignored"))]
    assert log.lines == ["WARNING [libcluster:t] unable to connect to :b@h: not part of network"]


def test_a_topology_ends_when_its_node_stops(registered):
    clock = Clock()
    alive = [True]
    s = Recorder("t", {"hosts": ["a@h"]}, self_node="me@h", clock=clock, **Fake().kw())
    s.stop_with(lambda: alive[0])
    s.start()
    assert s.wait_idle(10) and s.running
    alive[0] = False
    s.call_later(1, print, "never")
    clock.t += 1
    s.worker.wake()
    wait_for(lambda: not s.running, what="the topology to end")
