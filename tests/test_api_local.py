"""The public API inside one process: names, mailboxes, registration, local monitors,
cookies and the detached EPMD daemon."""
import socket
import stat
import subprocess
import sys
import threading

import pytest

import clusterkit as ck
from clusterkit import Atom, names
from conftest import port_open, requires_erlang, wait_for
from nodes import PyNode


# --- names -------------------------------------------------------------------------

def test_short_and_long_names():
    short = names.parse_local("a")
    assert not short.long and short.host == socket.gethostname().split(".")[0]
    assert names.parse_local("a@127.0.0.1").long
    assert names.parse_local("a@host.example.org").long
    assert not names.parse_local("a@localhost").long          # like `-sname a@localhost`


def test_localhost_is_not_a_long_name():
    with pytest.raises(ck.InvalidNodeName) as err:
        names.parse_local("a@localhost", longnames=True)
    assert "needs a host with a dot or an IP address" in str(err.value)
    assert "a@127.0.0.1" in str(err.value)


@pytest.mark.parametrize("bad, why", [
    ("", "nothing before"), ("@host", "nothing before"), ("a@", "nothing after"),
    ("a b@host", "only hold letters"), ("a@b@c", "more than one"),
])
def test_bad_names(bad, why):
    with pytest.raises(ck.InvalidNodeName, match=why):
        names.parse_local(bad)


def test_remote_names_need_a_host():
    with pytest.raises(ck.InvalidNodeName, match="needs a host part"):
        names.parse_remote("b")


# --- one node in this process ----------------------------------------------------------

@pytest.fixture
def node(clusterkit_epmd):
    me = ck.start("solo@127.0.0.1", cookie="c")
    yield me
    ck.stop()


def test_self_send_receive_flush(node, capsys):
    assert ck.Node.self() == "solo@127.0.0.1" and ck.Node.alive()
    me = ck.self()
    assert isinstance(me, ck.Pid) and me.node == node
    assert ck.self() == me                                  # same thread, same process
    ck.send(me, "one")
    ck.send(me, ("two", 2))
    ck.send(me, Atom("three"))
    assert ck.receive(timeout=1, match=lambda m: isinstance(m, tuple)) == ("two", 2)
    assert ck.flush() == ["one", Atom("three")]
    assert capsys.readouterr().out == "'one'\nAtom('three')\n"
    with pytest.raises(ck.ReceiveTimeout):
        ck.receive(timeout=0.05)
    assert ck.receive(timeout=0.05, default=None) is None


def test_threads_are_processes(node):
    pids = []
    t = threading.Thread(target=lambda: pids.append(ck.self()))
    t.start()
    t.join()
    assert pids[0] != ck.self()


def test_register_whereis_and_errors(node):
    ck.register("shell", ck.self())
    assert ck.whereis("shell") == ck.self()
    ck.send("shell", "by name")
    ck.send(("shell", "solo@127.0.0.1"), "by name and node")
    assert ck.receive(timeout=1) == "by name"
    assert ck.receive(timeout=1) == "by name and node"
    with pytest.raises(ck.BadArg, match="already registered"):
        ck.register("shell", ck.self())
    with pytest.raises(ck.BadArg, match="no process is registered as ghost"):
        ck.send("ghost", 1)
    with pytest.raises(ck.BadArg, match="cannot send to 42"):
        ck.send(42, 1)
    with pytest.raises(ck.ETFError):
        ck.send(("shell", "other@127.0.0.1"), {1, 2})        # a set has no Erlang form
    assert ck.whereis("ghost") is None


def test_local_monitor_and_genserver_stop(node):
    class Quiet(ck.GenServer):
        pass
    ok, pid = ck.GenServer.start(Quiet, None, name="Quiet")
    assert ok == "ok"
    ref = ck.monitor(pid)
    ck.GenServer.stop("Quiet")
    assert ck.receive(timeout=5) == ("DOWN", ref, "process", pid, "normal")
    ref2 = ck.monitor("Quiet")
    assert ck.receive(timeout=5) == ("DOWN", ref2, "process", ("Quiet", node), "noproc")


def test_start_twice_and_not_alive(clusterkit_epmd):
    assert ck.Node.self() == "nonode@nohost"
    assert ck.Node.list() == []
    assert ck.net_adm.ping("x@127.0.0.1") == "pang"
    with pytest.raises(ck.NotAlive, match="ck.start"):
        ck.self()
    ck.start("once@127.0.0.1", cookie="c")
    try:
        with pytest.raises(RuntimeError, match="already the node once@127.0.0.1"):
            ck.start("twice@127.0.0.1", cookie="c")
    finally:
        ck.stop()


# --- the cookie file -----------------------------------------------------------------------

def test_cookie_file_is_created_like_erlang_does(clusterkit_epmd, _private_home):
    ck.start("cookie@127.0.0.1")
    try:
        path = _private_home / ".erlang.cookie"
        text = path.read_text()
        assert len(text) == 20 and text.isalpha() and text.isupper()
        assert stat.S_IMODE(path.stat().st_mode) == 0o400
        assert ck.Node.get_cookie() == text
    finally:
        ck.stop()


def test_cookie_file_open_to_others_is_refused(clusterkit_epmd, _private_home):
    path = _private_home / ".erlang.cookie"
    path.write_text("SOMECOOKIE")
    path.chmod(0o644)
    with pytest.raises(ck.cookie.CookieError if hasattr(ck, "cookie") else Exception,
                       match="chmod 400"):
        ck.start("cookie@127.0.0.1")


@requires_erlang
def test_erl_and_clusterkit_share_the_cookie_file(procs, real_epmd, _private_home):
    env = {"HOME": str(_private_home)}
    py = PyNode(procs, "py@127.0.0.1", start=False, env=env)
    py.run("ck.start('py@127.0.0.1')")                       # creates ~/.erlang.cookie
    erl = procs.start(["erl", "-noshell", "-name", "e@127.0.0.1", "-eval",
                       "io:format(\"~p~n\", [net_adm:ping('py@127.0.0.1')]), halt()."],
                      env=env)
    out, _ = erl.communicate(timeout=30)
    assert b"pong" in out


# --- EPMD started on demand --------------------------------------------------------------

def test_start_spawns_a_detached_epmd_that_outlives_the_node(procs, epmd_port):
    assert not port_open(epmd_port)
    n = PyNode(procs, "a@127.0.0.1")
    assert port_open(epmd_port)
    n.proc.kill()
    n.proc.wait()
    try:
        # the daemon is still there after the node that started it died ...
        out = subprocess.run([sys.executable, "-m", "clusterkit", "epmd", "--port",
                              str(epmd_port), "--names"], capture_output=True, text=True,
                             timeout=30).stdout
        assert out.startswith(f"epmd: up and running on port {epmd_port} with data:")
        assert "name a at port" not in out                   # ... and forgot the node
    finally:
        subprocess.run([sys.executable, "-m", "clusterkit", "epmd", "--port",
                        str(epmd_port), "--kill"], capture_output=True, timeout=30)
    wait_for(lambda: not port_open(epmd_port), what="the daemon to stop")


# --- regressions from the runtime review -----------------------------------------------

def test_monitor_while_the_process_exits_always_gets_down(node):
    class Brief(ck.GenServer):
        def handle_call(self, request, from_, state):
            return ("stop", "normal", "bye", state)
    for _ in range(30):
        _ok, pid = ck.GenServer.start(Brief, None)
        ck.send(pid, ("$gen_call", (ck.self(), ck.node().make_ref()), "x"))
        ref = ck.monitor(pid)
        down = ck.receive(timeout=5, match=lambda m: isinstance(m, tuple) and len(m) == 5
                          and m[1] == ref)
        assert down[0] == "DOWN" and down[4] in ("normal", "noproc")
        assert type(down[4]) is Atom                      # an atom, never the string
    ck.flush()


def test_a_call_leaves_nothing_behind(node):
    class Once(ck.GenServer):
        def handle_call(self, request, from_, state):
            return ("stop", "normal", "bye", state)
    ck.GenServer.start(Once, None, name="Once")
    assert ck.GenServer.call("Once", "hi") == "bye"
    with pytest.raises(ck.CallError, match="nothing is registered as Missing"):
        ck.GenServer.call("Missing", "hi")
    assert ck.receive(timeout=0.3, default="empty") == "empty"


def test_a_match_function_does_not_hold_up_delivery(node):
    """While `match` runs, another thread can still deliver to the same mailbox."""
    me = ck.self()
    proc = ck.node().local_process(me)
    ck.send(me, "first")
    delivered = []

    def match(message):
        if message == "first" and not delivered:
            done = threading.Event()
            threading.Thread(target=lambda: (proc.mailbox.put("second"), done.set())).start()
            delivered.append(done.wait(5))      # would time out if match held the lock
        return message == "second"
    assert ck.receive(timeout=5, match=match) == "second"
    assert delivered == [True]
    assert ck.receive(timeout=1) == "first"
