"""Shared test helpers: free ports, deadlines, real Erlang, and process clean-up.

Tests run real processes on loopback only. Each test that needs EPMD gets its own
port through ERL_EPMD_PORT, so tests never touch a learner's 4369.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

ERL_INSTALL_HINT = (
    "real Erlang/OTP not found: install it with "
    "`apt-get install -y --no-install-recommends erlang-base erlang-crypto elixir`"
)
HAVE_ERLANG = shutil.which("erl") is not None and shutil.which("epmd") is not None

requires_erlang = pytest.mark.skipif(not HAVE_ERLANG, reason=ERL_INSTALL_HINT)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Processes:
    """Starts subprocesses for one test and kills every one of them afterwards."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, args, env=None, **kw) -> subprocess.Popen:
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        kw.setdefault("stdin", subprocess.PIPE)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.STDOUT)
        # A new session, so that clean-up can kill the whole process group.
        p = subprocess.Popen(args, env=full_env, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def python(self, code: str, env=None, **kw) -> subprocess.Popen:
        return self.start([sys.executable, "-u", "-c", code], env=env, **kw)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for stream in (p.stdin, p.stdout, p.stderr):
                if stream:
                    stream.close()


@pytest.fixture
def procs():
    ps = Processes()
    yield ps
    ps.close()


@pytest.fixture
def epmd_port(monkeypatch):
    """A fresh EPMD port for this test, exported as ERL_EPMD_PORT."""
    port = free_port()
    monkeypatch.setenv("ERL_EPMD_PORT", str(port))
    return port


@pytest.fixture
def clusterkit_epmd(procs, epmd_port):
    """clusterkit's own EPMD daemon in the foreground on this test's port."""
    p = procs.start([sys.executable, "-m", "clusterkit", "epmd", "--port", str(epmd_port)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: port_open(epmd_port), what="clusterkit epmd to listen")
    yield epmd_port
    p.kill()


@pytest.fixture
def real_epmd(procs, epmd_port):
    """The real `epmd` in the foreground on this test's port."""
    if not HAVE_ERLANG:
        pytest.skip(ERL_INSTALL_HINT)
    p = procs.start(["epmd", "-port", str(epmd_port), "-relaxed_command_check"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: port_open(epmd_port), what="epmd to listen")
    yield epmd_port
    p.kill()


@pytest.fixture(autouse=True)
def _private_home(tmp_path, monkeypatch):
    """Never touch the learner's ~/.erlang.cookie: every test gets its own HOME."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


class LogLines(logging.Handler):
    """Keeps "LEVEL message" lines, for tests that read a logger's output."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(f"{record.levelname} {record.getMessage()}")


def private_logger(prefix: str) -> logging.Logger:
    """A fresh logger that keeps its lines in `.lines` and passes nothing upwards."""
    logger = logging.getLogger(f"{prefix}.{id(object())}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = LogLines()
    logger.addHandler(handler)
    logger.lines = handler.lines
    return logger
