"""Session set-up for the whole test run, notebooks included.

Before any kernel starts (nbval starts them while collecting), point every process
of this run at its own EPMD port and its own HOME, so a test run never touches a
learner's port 4369 or ~/.erlang.cookie, and two runs never collide.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

_epmd = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pytest_configure(config):
    global _epmd
    if os.environ.get("CLUSTERKIT_TEST_SESSION"):
        return                  # a nested pytest (e.g. in a test) keeps its parent's set-up
    home = tempfile.mkdtemp(prefix="clusterkit-test-home-")
    port = _free_port()
    os.environ.update({"HOME": home, "ERL_EPMD_PORT": str(port),
                       "CLUSTERKIT_TEST_SESSION": "1"})
    # Lessons may call `!clusterkit ...`: the venv's bin must be on PATH, as in `make lab`.
    bindir = os.path.dirname(sys.executable)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    _epmd = subprocess.Popen([sys.executable, "-m", "clusterkit", "epmd", "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)


def pytest_unconfigure(config):
    if _epmd is not None and _epmd.poll() is None:
        os.killpg(_epmd.pid, signal.SIGKILL)
        _epmd.wait(timeout=5)


def pytest_collection_modifyitems(config, items):
    """Lessons with real Erlang/Elixir nodes (notebook metadata "clusterkit": {"needs":
    ["elixir"]}) are skipped, with the install line, where those are not installed."""
    import json
    import shutil
    import pytest
    needs_by_path = {}
    for item in items:
        path = str(getattr(item, "fspath", ""))
        if not path.endswith(".ipynb"):
            continue
        if path not in needs_by_path:
            try:
                with open(path, encoding="utf-8") as f:
                    meta = json.load(f).get("metadata", {}).get("clusterkit", {})
            except (OSError, ValueError):
                meta = {}
            missing = [tool for tool in meta.get("needs", []) if shutil.which(tool) is None]
            needs_by_path[path] = missing
        if needs_by_path[path]:
            from clusterkit.lab.beam import INSTALL_HINT
            item.add_marker(pytest.mark.skip(
                reason=f"{', '.join(needs_by_path[path])} not found: {INSTALL_HINT}"))
