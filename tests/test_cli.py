"""The `clusterkit` command in two terminals: a headless node and an iex-like shell."""
import subprocess
import sys

from conftest import wait_for
from nodes import PyNode


def test_node_and_shell(procs, clusterkit_epmd):
    node = procs.start([sys.executable, "-m", "clusterkit", "node", "--name", "b@127.0.0.1",
                        "--cookie", "secret_token"])
    line = node.stdout.readline().decode()
    assert line.startswith("node b@127.0.0.1 is up")
    shell = subprocess.run(
        [sys.executable, "-m", "clusterkit", "shell", "--name", "a@127.0.0.1", "--cookie",
         "secret_token"], input='Node.ping("b@127.0.0.1")\nsorted(Node.list())\n',
        capture_output=True, text=True, timeout=60)
    assert "(a@127.0.0.1)1> Atom('pong')" in shell.stdout
    assert "Tip:" not in shell.stdout                  # the banner only, no IPython tip
    assert "(a@127.0.0.1)2> [Atom('b@127.0.0.1')]" in shell.stdout
    # The node is also reachable from a third process, until it is stopped.
    c = PyNode(procs, "c@127.0.0.1")
    assert c.eval("Node.ping('b@127.0.0.1')") == "pong"
    node.terminate()
    assert node.wait(timeout=10) == 0
    wait_for(lambda: c.eval("Node.ping('b@127.0.0.1')") == "pang", what="b to be gone")


def test_bad_start_is_a_clear_error(clusterkit_epmd):
    out = subprocess.run([sys.executable, "-m", "clusterkit", "node", "--name", "a@localhost",
                          "--cookie", "c"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "cannot be a long name" in out.stderr and "Traceback" not in out.stderr
