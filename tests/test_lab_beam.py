"""Real elixir/erl nodes as lab nodes: evaluation, output, errors, and the node's life."""
import os

import pytest

from conftest import requires_erlang, wait_for
from clusterkit.lab import Lab, LabError
from clusterkit.lab import beam

HAVE_ELIXIR = beam.available("elixir")
requires_elixir = pytest.mark.skipif(not HAVE_ELIXIR, reason=beam.missing_text("elixir"))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def lab(clusterkit_epmd):
    lab = Lab(cookie="secret_token")
    yield lab
    lab.shutdown()


@requires_elixir
def test_elixir_node_evaluates_like_iex(lab):
    lab.start("e", beam="elixir")
    lab.start("a")
    assert lab.run("e", 'Node.ping(:"a@127.0.0.1")').value == ":pong"
    result = lab.run("e", 'IO.puts("hi"); x = 40 + 2')
    assert result.ok and result.text == "hi\n" and result.value == "42"
    assert lab.run("e", "x + 1").value == "43"                # bindings live on, as in iex
    assert lab.run("e", "Node.list()").value == '[:"a@127.0.0.1"]'
    assert lab.run("e", "send(self(), :hello); flush()").text == ":hello\n"
    assert lab.run("a", 'rpc.call("e@127.0.0.1", "Elixir.Enum", "sum", [[1, 2, 3]])').value == "6"
    # what a background process prints goes to the node's log
    lab.run("e", 'spawn(fn -> Process.sleep(200); IO.puts("later") end)')
    assert lab.wait_for_output("e", "later") == "later"


@requires_elixir
def test_elixir_errors_come_back_as_text(lab):
    lab.start("e", beam="elixir")
    bad = lab.run("e", "1 + :a")
    assert not bad.ok and bad.error == "** (ArithmeticError) bad argument in arithmetic expression"
    syntax = lab.run("e", "Enum.map(1..3, fn i -> i end")
    assert not syntax.ok and syntax.error.startswith("** (TokenMissingError) iex:1:")
    assert lab.run("e", "exit(:boom)").error == "** (exit) :boom"
    # a cell that waits forever is stopped at the deadline, and the node goes on
    with pytest.raises(LabError, match="did not finish within 1"):
        lab.run("e", "receive do m -> m end", timeout=1)
    assert lab.run("e", ":still_here").value == ":still_here"


@requires_erlang
def test_erlang_node_evaluates_like_erl(lab):
    lab.start("r", beam="erlang")
    lab.start("a")
    assert lab.run("r", "net_adm:ping('a@127.0.0.1').").value == "pong"
    result = lab.run("r", 'X = 1 + 2, io:format("x=~p~n", [X]), {X, nodes()}')
    assert result.text == "x=3\n" and result.value == "{3,['a@127.0.0.1']}"
    assert lab.run("r", "X * 2").value == "6"
    assert lab.run("r", "self() ! hi, flush().").text == "Shell got hi\n"
    assert lab.run("r", "1 + a.").error.startswith("** exception error: an error occurred")
    assert lab.run("r", "1 + .").error == "* 1: syntax error before: '.'"


@requires_elixir
def test_stop_kill_freeze_thaw_logs(lab):
    lab.start("a", net_ticktime=2)
    lab.start("e", beam="elixir", net_ticktime=2)
    lab.run("a", "net_kernel.monitor_nodes(True)")
    assert lab.run("e", 'Node.connect(:"a@127.0.0.1")').value == "true"
    assert lab.run("a", "ck.receive(timeout=10)").value == "(Atom('nodeup'), Atom('e@127.0.0.1'))"
    pid = lab.node("e").pid
    lab.freeze("e")
    wait_for(lambda: _state(pid) == "T", what="e's VM to stop")
    with pytest.raises(LabError, match="frozen"):
        lab.run("e", "1")
    assert lab.run("a", "ck.receive(timeout=15)").value == "(Atom('nodedown'), Atom('e@127.0.0.1'))"
    lab.thaw("e")
    assert lab.run("e", 'Node.ping(:"a@127.0.0.1")', timeout=15).value == ":pong"
    assert lab.run("a", "ck.receive(timeout=10)").value == "(Atom('nodeup'), Atom('e@127.0.0.1'))"
    lab.stop("e")
    assert lab.run("a", "ck.receive(timeout=10)").value == "(Atom('nodedown'), Atom('e@127.0.0.1'))"
    wait_for(lambda: not _alive(pid), what="e's VM to end")
    with pytest.raises(LabError, match="stopped"):
        lab.run("e", "1")
    lab.start("e", beam="elixir")                       # a stopped node starts again
    lab.run("e", 'spawn(fn -> Process.sleep(200); IO.puts(\"from the log\") end)')
    wait_for(lambda: any("from the log" in o.text for o in lab.node("e").backlog),
             what="e's background line")
    assert [o.text for o in lab.logs("e")] == ["from the log\n"]
    pid = lab.node("e").pid
    assert lab.run("e", 'Node.connect(:"a@127.0.0.1")').value == "true"
    lab.run("a", "ck.receive(timeout=10)")
    lab.kill("e")
    assert lab.run("a", "ck.receive(timeout=5)").value == "(Atom('nodedown'), Atom('e@127.0.0.1'))"
    assert not _alive(pid)
    assert {s["node"]: s["state"] for s in lab.status()}["e@127.0.0.1"] == "killed"


@requires_elixir
def test_a_node_that_halts_is_dead_not_hung(lab):
    lab.start("e", beam="elixir")
    with pytest.raises(LabError, match="went away|died"):
        lab.run("e", "System.halt()", timeout=10)
    wait_for(lambda: lab.node("e").state == "dead", what="e to be dead")
    with pytest.raises(LabError, match="dead"):
        lab.run("e", "1")


def test_without_erlang_one_line_hint(lab, monkeypatch):
    monkeypatch.setattr(beam.shutil, "which", lambda name: None)
    with pytest.raises(LabError) as info:
        lab.start("e", beam="elixir")
    text = str(info.value)
    assert "\n" not in text and "Elixir is not installed" in text and "apt-get install" in text
    with pytest.raises(LabError, match="use elixir or erlang"):
        lab.start("x", beam="cobol")


@requires_elixir
def test_magics_start_and_run_elixir(clusterkit_epmd, capsys):
    from IPython.core.interactiveshell import InteractiveShell
    from clusterkit.lab import magics
    ip = InteractiveShell.instance()
    try:
        ip.run_line_magic("load_ext", "clusterkit.lab")
        ip.run_line_magic("cluster", "start e --elixir")
        ip.run_cell_magic("on", "e", 'IO.puts("hello")\n:world')
        ip.run_cell_magic("on", "e", "raise ArgumentError, \"nope\"")
        ip.run_line_magic("cluster", "status")
        captured = capsys.readouterr()
        assert "started e@127.0.0.1\n" in captured.out
        assert "(e@127.0.0.1)\nhello\n:world\n" in captured.out
        assert "** (ArgumentError) nope" in captured.err
        assert "--remsh e@127.0.0.1" in captured.out
    finally:
        lab = magics.shared_lab(create=False)
        if lab is not None:
            lab.shutdown()
        magics._lab = None
        InteractiveShell.clear_instance()
