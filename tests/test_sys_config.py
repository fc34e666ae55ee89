"""ck.start(config="sys.config") with real nodes: Erlang's sync_nodes_* semantics."""
import pytest

from conftest import free_port, requires_erlang
from nodes import ErlNode, PyNode


def _write(tmp_path, body: str) -> str:
    path = tmp_path / "sys.config"
    path.write_text(body)
    return str(path)


def test_optional_and_mandatory_nodes(procs, clusterkit_epmd, tmp_path):
    PyNode(procs, "b@127.0.0.1")
    ok = _write(tmp_path, """
[{kernel, [
  {sync_nodes_optional, ['b@127.0.0.1', 'nobody@127.0.0.1']},
  {sync_nodes_timeout, 1500},
  {net_ticktime, 20}
]}].
""")
    a = PyNode(procs, "a@127.0.0.1", start=False)
    a.run(f"ck.start('a@127.0.0.1', cookie='secret_token', config={ok!r})")
    assert a.eval("Node.list()") == ["b@127.0.0.1"]
    assert a.eval("net_kernel.get_net_ticktime()") == 20
    bad = _write(tmp_path, """
[{kernel, [{sync_nodes_mandatory, ['b@127.0.0.1', 'nobody@127.0.0.1']},
           {sync_nodes_timeout, 800}]}].
""")
    c = PyNode(procs, "c@127.0.0.1", start=False)
    with pytest.raises(AssertionError, match="nobody@127.0.0.1 did not come up"):
        c.run(f"ck.start('c@127.0.0.1', cookie='secret_token', config={bad!r})")
    assert c.eval("Node.alive()") is False                # the start failed as a whole


def test_listen_port_range_and_syntax_errors(procs, clusterkit_epmd, tmp_path):
    port = free_port()
    cfg = _write(tmp_path, f"""
[{{kernel, [{{inet_dist_listen_min, {port}}}, {{inet_dist_listen_max, {port}}}]}}].
""")
    a = PyNode(procs, "a@127.0.0.1", start=False)
    a.run(f"ck.start('a@127.0.0.1', cookie='c', config={cfg!r})")
    assert a.eval("ck.node().port") == port
    broken = _write(tmp_path, "[{kernel, [{sync_nodes_optional, [b@127.0.0.1]}]}].\n")
    with pytest.raises(AssertionError, match=r"sys.config:1:\d+:.*'b@127.0.0.1'"):
        PyNode(procs, "x@127.0.0.1", start=False).run(
            f"ck.start('x@127.0.0.1', cookie='c', config={broken!r})")


@requires_erlang
def test_same_config_file_for_erl_and_clusterkit(procs, real_epmd, tmp_path):
    """One sys.config, read by a real erl and by clusterkit: both wait for each other."""
    cfg = _write(tmp_path, """
[{kernel, [{sync_nodes_optional, ['e@127.0.0.1', 'py@127.0.0.1']},
           {sync_nodes_timeout, 3000}]}].
""")
    erl = ErlNode(procs, "e@127.0.0.1", extra_args=("-config", cfg))
    py = PyNode(procs, "py@127.0.0.1", start=False)
    py.run(f"ck.start('py@127.0.0.1', cookie='secret_token', config={cfg!r})")
    assert py.eval("Node.list()") == ["e@127.0.0.1"]
    assert erl.eval("nodes().") == ["py@127.0.0.1"]
