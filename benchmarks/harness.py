"""Processes for the benchmarks: a private EPMD, clusterkit agents and erl agents.

Every node is its own OS process on 127.0.0.1, registered with a private `epmd` on a
free port (ERL_EPMD_PORT), under a private HOME so no ~/.erlang.cookie is touched.
Every process started here is in its own session and is killed, whole group, when the
`Session` closes: on normal exit, on an exception and on Ctrl-C (see __main__.py).
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "127.0.0.1"
HAVE_ERLANG = all(shutil.which(t) for t in ("erl", "epmd", "erlc"))
# The run has its own epmd. Without this, each erl forks `epmd -daemon`, a detached
# process that outlives the run if it starts just as the run's own epmd is stopped.
# (clusterkit nodes likewise only check that an epmd is there.)
ERL_NO_EPMD = ("-start_epmd", "false")


class BenchError(RuntimeError):
    pass


def _die_with_parent_hook():
    """On Linux, a child gets SIGKILL when the benchmark dies, even by SIGKILL.

    prctl(PR_SET_PDEATHSIG) runs in the child between fork and exec; the function is
    looked up here, in the parent, so the child imports nothing.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook():
        prctl(1, signal.SIGKILL)        # PR_SET_PDEATHSIG
    return hook


_PDEATHSIG = _die_with_parent_hook()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def epmd_names(port: int) -> set[str]:
    """The names registered with the EPMD on `port` (a raw NAMES_REQ, no library)."""
    try:
        with socket.create_connection((HOST, port), timeout=2) as s:
            s.sendall(b"\x00\x01n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return set()
    names = set()
    for line in data[4:].decode("utf-8", "replace").splitlines():
        if line.startswith("name "):
            names.add(line.split(" ")[1])
    return names


def wait_until(predicate, timeout: float, what: str, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its children (erl's beam forks a helper)."""
    import psutil
    try:
        p = psutil.Process(pid)
        total = p.memory_info().rss
        for child in p.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0


# --- statistics ----------------------------------------------------------------------

def median(values):
    s = sorted(values)
    n = len(s)
    if n == 0:
        return None
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2


def percentile(values, p: float):
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(values)
    if not s:
        return None
    k = max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))
    return s[int(k)]


# --- agents --------------------------------------------------------------------------

class Agent:
    """A node process that takes commands on stdin and answers "@@R ..." lines."""

    kind = "?"

    def __init__(self, session: "Session", name: str, proc: subprocess.Popen):
        self.session = session
        self.name = name
        self.proc = proc
        self.pid = proc.pid
        self.lines: list[str] = []
        self._results: list[str] = []
        self._taken = 0
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                if line.startswith("@@R "):
                    self._results.append(line[4:])
                else:
                    self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    if predicate():
                        break
                    tail = "\n".join(self.lines[-30:])
                    state = "exited" if self.proc.poll() is not None else "timed out"
                    raise BenchError(f"{self.name} {state} waiting for {what}; its output:\n"
                                     f"{tail}")
                self._cond.wait(min(left, 0.2))

    def wait_ready(self, timeout: float = 60):
        self._wait(lambda: any(l.startswith("@@READY") for l in self.lines), timeout,
                   "start-up")
        return self

    def send_line(self, text: str) -> None:
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def result(self, timeout: float = 60, what: str = "an answer"):
        """The next answer (a command may print more than one, like "armed" then the rest)."""
        self._wait(lambda: len(self._results) > self._taken, timeout, what)
        raw = self._results[self._taken]
        self._taken += 1
        return self._parse(raw)

    def call(self, *command, timeout: float = 120):
        self.send_line(self._format(command))
        return self.result(timeout, f"the answer to {command[0]}")

    def log(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def signal(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


class PyAgent(Agent):
    """A clusterkit node in its own Python process (benchmarks/pyagent.py)."""

    kind = "ck"

    def _format(self, command) -> str:
        cmd, *args = command
        return json.dumps({"cmd": cmd, **(args[0] if args else {})})

    @staticmethod
    def _parse(raw: str):
        value = json.loads(raw)
        if isinstance(value, dict) and "error" in value:
            raise BenchError(f"clusterkit agent: {value['error']}")
        return value

    # the same verbs as ErlAgent
    def echo_server(self):
        return self.call("echo_server")

    def sink_server(self):
        return self.call("sink_server")

    def ping(self, node):
        return self.call("ping", {"node": node})

    def rtt(self, node, n):
        r = self.call("rtt", {"node": node, "n": n})
        if not r.get("ok"):
            raise BenchError(f"{self.name}: round trips to {node} lost a reply: {r}")
        return r["times"], r["errors"]

    def tput(self, node, n, swap=False, size=1):
        r = self.call("tput", {"node": node, "n": n, "swap": swap, "size": size}, timeout=300)
        if not r.get("ok"):
            raise BenchError(f"{self.name}: throughput to {node}: no acknowledgement: {r}")
        return r["ns"], r["count"], r["errors"]

    def connect(self, node):
        return self._pong(self.call("connect", {"node": node}), node)

    def reconnect(self, node, pause_ms=100):
        return self._pong(self.call("reconnect", {"node": node, "pause_ms": pause_ms}), node)

    def watch(self, node):
        self.send_line(self._format(("watch", {"node": node})))
        armed = self.result(30, "armed")
        if armed != "armed":
            raise BenchError(f"{self.name} could not watch {node}: {armed}")

    def watch_result(self, timeout=60):
        r = self.result(timeout, "nodedown")
        if not (isinstance(r, list) and r[0] == "down"):
            raise BenchError(f"{self.name}: no nodedown: {r}")
        return r[1]

    def _pong(self, r, node):
        if r[0] != "pong":
            raise BenchError(f"{self.name} could not reach {node}: {r[0]}")
        return r[1]

    # PubSub (figures.pubsub)
    def ps_start(self):
        return self.call("ps_start")

    def ps_members(self):
        return self.call("ps_members")

    def ps_subs(self, topic, k, pub_node):
        return self.call("ps_subs", {"topic": topic, "k": k, "pub_node": pub_node})

    def ps_tput(self, topic, n, k):
        r = self.call("ps_tput", {"topic": topic, "n": n, "k": k}, timeout=300)
        if not r.get("ok"):
            raise BenchError(f"{self.name}: broadcasts to {topic}: not all done: {r}")
        return r["ns"], r["count"], r["errors"]

    def ps_lat(self, topic, m, k):
        r = self.call("ps_lat", {"topic": topic, "m": m, "k": k}, timeout=300)
        if not r.get("ok"):
            raise BenchError(f"{self.name}: fan-out to {topic} lost an ack: {r}")
        return r["times"]

    def halt(self):
        try:
            self.send_line(self._format(("halt",)))
        except OSError:
            pass


class ErlAgent(Agent):
    """A real Erlang node running benchmarks/ckbench.erl."""

    kind = "erl"

    def _format(self, command) -> str:
        cmd, *args = command
        if not args:
            return f"{cmd}."
        return "{" + ", ".join([cmd, *(_erl_literal(a) for a in args)]) + "}."

    @staticmethod
    def _parse(raw: str):
        from clusterkit import etf
        value = etf.decode(base64.b64decode(raw))
        if isinstance(value, tuple) and value and value[0] == "error":
            raise BenchError(f"erl agent: {value!r}")
        return value

    def echo_server(self):
        return self.call("echo_server")

    def sink_server(self):
        return self.call("sink_server")

    def ping(self, node):
        return str(self.call("ping", _Quoted(node)))

    def rtt(self, node, n):
        r = self.call("rtt", _Quoted(node), n)
        if r[0] != "ok":
            raise BenchError(f"{self.name}: round trips to {node} lost a reply: {r!r}")
        # a binary decodes to str when it happens to be valid UTF-8: undo that
        raw = r[1] if isinstance(r[1], bytes) else r[1].encode("utf-8")
        times = [int.from_bytes(raw[i:i + 8], "big") for i in range(0, len(raw), 8)]
        return times, r[2]

    def tput(self, node, n, size=1):
        args = (n,) if size == 1 else (n, size)
        r = self.call("tput", _Quoted(node), *args, timeout=300)
        if r[0] != "ok":
            raise BenchError(f"{self.name}: throughput to {node}: no acknowledgement: {r!r}")
        return r[1], r[2], r[3]

    def connect(self, node):
        return self._pong(self.call("connect", _Quoted(node)), node)

    def reconnect(self, node, pause_ms=100):
        return self._pong(self.call("reconnect", _Quoted(node), pause_ms), node)

    def watch(self, node):
        self.send_line(self._format(("watch", _Quoted(node))))
        armed = self.result(30, "armed")
        if armed != "armed":
            raise BenchError(f"{self.name} could not watch {node}: {armed!r}")

    def watch_result(self, timeout=60):
        r = self.result(timeout, "nodedown")
        if not (isinstance(r, tuple) and r[0] == "down"):
            raise BenchError(f"{self.name}: no nodedown: {r!r}")
        return r[1]

    # PubSub (figures.pubsub); topics are binaries on both sides
    def ps_start(self):
        return self.call("ps_start")

    def ps_members(self):
        return self.call("ps_members")

    def ps_subs(self, topic, k, pub_node):
        return self.call("ps_subs", topic.encode(), k, _Quoted(pub_node))

    def ps_tput(self, topic, n, k):
        r = self.call("ps_tput", topic.encode(), n, k, timeout=300)
        if r[0] != "ok":
            raise BenchError(f"{self.name}: broadcasts to {topic}: not all done: {r!r}")
        return r[1], r[2], r[3]

    def ps_lat(self, topic, m, k):
        r = self.call("ps_lat", topic.encode(), m, k, timeout=300)
        if r[0] != "ok":
            raise BenchError(f"{self.name}: fan-out to {topic} lost an ack: {r!r}")
        raw = r[1] if isinstance(r[1], bytes) else r[1].encode("utf-8")
        return [int.from_bytes(raw[i:i + 8], "big") for i in range(0, len(raw), 8)]

    def codec(self, data: bytes, iters: int):
        dec, enc, _size = self.call("codec", data, iters, timeout=300)
        return dec, enc

    def _pong(self, r, node):
        if r[0] != "pong":
            raise BenchError(f"{self.name} could not reach {node}: {r[0]}")
        return r[1]

    def halt(self):
        try:
            self.send_line("halt.")
        except OSError:
            pass


class _Quoted(str):
    """An atom to quote in an Erlang command."""


def _erl_literal(value) -> str:
    if isinstance(value, _Quoted):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "<<" + ",".join(str(b) for b in value) + ">>"
    raise TypeError(f"no Erlang literal for {value!r}")


# --- the session ---------------------------------------------------------------------

class Session:
    """One benchmark run's processes: the private EPMD and every node, all killed at close."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []
        self.tmp = tempfile.mkdtemp(prefix="clusterkit-bench-")
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        self.epmd_port: int | None = None
        self.ebin: str | None = None
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self.env = dict(os.environ)
        self.env["HOME"] = self.home
        self.env.pop("ERL_AFLAGS", None)
        self.env.pop("ERL_FLAGS", None)
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)

    # processes
    def popen(self, args, **kw) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.PIPE)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.STDOUT)
        kw.setdefault("env", self.env)
        if threading.current_thread() is threading.main_thread() and _PDEATHSIG:
            # (the "parent" of PDEATHSIG is the thread that forks: only the main one lives
            # as long as the run)
            kw.setdefault("preexec_fn", _PDEATHSIG)
        p = subprocess.Popen(args, start_new_session=True, **kw)
        with self._lock:
            self.procs.append(p)
        return p

    def close(self) -> None:
        with self._lock:
            procs, self.procs = self.procs[::-1], []     # the nodes first, epmd last
        for p in procs:
            if p.poll() is None:
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    try:
                        os.killpg(p.pid, sig)
                    except (ProcessLookupError, PermissionError):
                        pass
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for stream in (p.stdin, p.stdout, p.stderr):
                if stream:
                    try:
                        stream.close()
                    except OSError:
                        pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # EPMD
    def start_epmd(self, clusterkit_epmd: bool = False) -> int:
        """A private EPMD on a free port; the real one when Erlang is installed."""
        port = free_port()
        if HAVE_ERLANG and not clusterkit_epmd:
            args = ["epmd", "-port", str(port)]
        else:
            args = [sys.executable, "-m", "clusterkit", "epmd", "--port", str(port)]
        self.popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
        wait_until(lambda: port_open(port), 15, "epmd to listen")
        self.epmd_port = port
        self.env["ERL_EPMD_PORT"] = str(port)
        return port

    def compile_erl(self) -> str:
        if self.ebin is None:
            ebin = os.path.join(self.tmp, "ebin")
            os.makedirs(ebin)
            out = subprocess.run(["erlc", "-o", ebin, str(HERE / "ckbench.erl")],
                                 capture_output=True, text=True, env=self.env)
            if out.returncode != 0:
                raise BenchError(f"erlc failed on ckbench.erl:\n{out.stdout}{out.stderr}")
            self.ebin = ebin
        return self.ebin

    # nodes
    def fresh_name(self, prefix: str) -> str:
        return f"{prefix}{next(self._names)}@{HOST}"

    def py_agent(self, name: str, cookie: str, wait: bool = True, **options) -> PyAgent:
        proc = self.popen([sys.executable, "-u", str(HERE / "pyagent.py")])
        agent = PyAgent(self, name, proc)
        if wait:
            self.boot(agent, cookie, options)
        else:
            agent._boot = (cookie, options)
        return agent

    def erl_agent(self, name: str, cookie: str, wait: bool = True,
                  net_ticktime: int | None = None) -> ErlAgent:
        args = ["erl", "-noshell", "-name", name, "-setcookie", cookie,
                *ERL_NO_EPMD, "-pa", self.compile_erl()]
        if net_ticktime is not None:
            args += ["-kernel", "net_ticktime", str(net_ticktime)]
        proc = self.popen(args + ["-s", "ckbench", "agent"])
        agent = ErlAgent(self, name, proc)
        if wait:
            agent.wait_ready()
        return agent

    def agent(self, kind: str, name: str, cookie: str, wait: bool = True,
              net_ticktime: int | None = None):
        if kind == "ck":
            options = {} if net_ticktime is None else {"net_ticktime": net_ticktime}
            return self.py_agent(name, cookie, wait, **options)
        return self.erl_agent(name, cookie, wait, net_ticktime)

    def boot(self, agent: Agent, cookie: str | None = None, options: dict | None = None):
        """Finish starting an agent made with wait=False."""
        agent.wait_ready()
        if isinstance(agent, PyAgent):
            if cookie is None:
                cookie, options = agent._boot
            agent.call("start", {"name": agent.name, "cookie": cookie,
                                 "options": options or {}})
        return agent

    @staticmethod
    def start_all(agents):
        """Wait for agents started with wait=False (they boot side by side)."""
        for a in agents:
            a.session.boot(a)
        return agents


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so `finally` blocks kill the processes."""
    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            signal.signal(sig, raise_interrupt)
        except (ValueError, OSError):
            pass
