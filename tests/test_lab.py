"""The lab: node kernels started, driven, stopped, killed, frozen; magics; clean-up."""
import os
import signal
import textwrap

import pytest

from conftest import wait_for
from clusterkit.lab import Lab, LabError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture
def lab(clusterkit_epmd):
    lab = Lab(cookie="secret_token")
    yield lab
    lab.shutdown()


def test_start_run_and_background_output(lab):
    assert lab.start("a", "b") == ["a@127.0.0.1", "b@127.0.0.1"]
    result = lab.run("a", "print('hello'); Node.ping('b@127.0.0.1')")
    assert result.ok and result.text == "hello\n" and result.value == "Atom('pong')"
    # a log line printed by b outside any cell waits in b's backlog, in order
    lab.run("a", "Node.set_cookie('b@127.0.0.1', 'wrong'); Node.disconnect('b@127.0.0.1')")
    assert lab.run("a", "Node.ping('b@127.0.0.1')").value == "Atom('pang')"
    line = lab.wait_for_output("b", "Invalid challenge reply")
    assert "'a@127.0.0.1' rejected" in line
    shown = lab.run("b", "1 + 1")
    assert any("Invalid challenge reply" in o.text for o in shown.backlog)
    assert shown.value == "2"
    assert lab.run("b", "2").backlog == []                  # shown once, never lost


def test_errors_are_the_nodes(lab):
    lab.start("a")
    result = lab.run("a", "1 / 0")
    assert not result.ok and result.error == "ZeroDivisionError: division by zero"
    assert lab.run("a", "'still here'").value == "'still here'"
    with pytest.raises(LabError, match="no node zz@127.0.0.1"):
        lab.run("zz", "1")
    with pytest.raises(LabError, match="already running"):
        lab.start("a")


def test_stop_kill_freeze_thaw(lab):
    lab.start("a", "b", "c", net_ticktime=2)
    lab.run("a", "net_kernel.monitor_nodes(True)")
    for other in ("b", "c"):
        assert lab.run(other, "Node.ping('a@127.0.0.1')").value == "Atom('pong')"
    lab.run("a", "ck.receive(timeout=5); ck.receive(timeout=5)")
    lab.stop("b")
    assert lab.run("a", "ck.receive(timeout=5)").value == "(Atom('nodedown'), Atom('b@127.0.0.1'))"
    pid = lab.node("c").pid
    lab.freeze("c")
    with pytest.raises(LabError, match="frozen"):
        lab.run("c", "1")
    assert lab.run("a", "ck.receive(timeout=15)").value == "(Atom('nodedown'), Atom('c@127.0.0.1'))"
    lab.thaw("c")
    assert lab.run("c", "Node.ping('a@127.0.0.1')").value == "Atom('pong')"
    lab.kill("c")
    wait_for(lambda: not _alive(pid), what="c's kernel to die")
    assert lab.run("a", "ck.receive(timeout=10)").value == "(Atom('nodeup'), Atom('c@127.0.0.1'))"
    assert lab.run("a", "ck.receive(timeout=10)").value == "(Atom('nodedown'), Atom('c@127.0.0.1'))"
    assert {s["node"]: s["state"] for s in lab.status()} == {
        "a@127.0.0.1": "running", "b@127.0.0.1": "stopped", "c@127.0.0.1": "killed"}
    # a stopped node can start again
    lab.start("b")
    assert lab.run("b", "Node.ping('a@127.0.0.1')").value == "Atom('pong')"


def test_node_kernels_die_with_a_sigkilled_lab(procs, clusterkit_epmd):
    owner = procs.python(textwrap.dedent("""
        from clusterkit.lab import Lab
        lab = Lab()
        lab.start("a", "b")
        print(" ".join(str(n.pid) for n in lab.nodes.values()), flush=True)
        import time
        time.sleep(3600)
    """))
    pids = [int(p) for p in owner.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    os.kill(owner.pid, signal.SIGKILL)
    wait_for(lambda: not any(_alive(p) for p in pids), timeout=15,
             what="the node kernels to exit after their lab was killed")


def test_magics(clusterkit_epmd, capsys):
    from IPython.core.interactiveshell import InteractiveShell
    from clusterkit.lab import magics
    ip = InteractiveShell.instance()
    try:
        ip.run_line_magic("load_ext", "clusterkit.lab")
        ip.run_line_magic("cluster", "start a b --cookie secret_token")
        ip.run_cell_magic("on", "a", "Node.ping('b@127.0.0.1')")
        ip.run_cell_magic("on", "a b", "sorted(Node.list())")
        ip.run_cell_magic("on", "b", "raise ValueError('oops')")
        ip.run_line_magic("cluster", "status")
        ip.run_line_magic("cluster", "logs b")
        ip.run_line_magic("cluster", "stop nobody")
        captured = capsys.readouterr()
        out = captured.out
        assert "started a@127.0.0.1\nstarted b@127.0.0.1\n" in out
        assert "(a@127.0.0.1)\nAtom('pong')\n" in out
        assert "(a@127.0.0.1)\n[Atom('b@127.0.0.1')]\n(b@127.0.0.1)\n[Atom('a@127.0.0.1')]\n" in out
        assert "ValueError: oops" in captured.err
        assert "jupyter console --existing" in out
        assert "no node nobody@127.0.0.1" in captured.err
    finally:
        lab = magics.shared_lab(create=False)
        if lab is not None:
            lab.shutdown()
        magics._lab = None
        InteractiveShell.clear_instance()


def test_a_kernel_that_dies_is_noticed(lab):
    lab.start("a")
    with pytest.raises(LabError, match="a@127.0.0.1 died"):
        lab.run("a", "import os; os._exit(1)", timeout=30)
    assert lab.node("a").state == "dead"
    # Its channels are closed: left open, their ZMQ sockets reconnect to the dead
    # kernel's ports and greet whatever binds one of them next.
    wait_for(lambda: not lab.node("a").client.channels_running, what="channels closed")
