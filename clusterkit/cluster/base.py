"""The shared base of every discovery strategy: libcluster's `Cluster.Strategy`.

A strategy finds node names; the base decides what to do with them. `connect_nodes`
diffs the wanted names against `list_nodes()` and this node, connects each one that is
missing and logs libcluster's line for it; `disconnect_nodes` does the reverse. The
three calls (`connect`, `disconnect`, `list_nodes`) and the clock come in as arguments,
so a test can hand in fakes and watch what a strategy asks for.

Connecting blocks until a handshake ends, and the node's loop thread must never block.
So each topology has one worker thread of its own (`Worker`): a bounded queue of jobs
and a few timers. A strategy's timers and the work they start run there, one at a
time, so a strategy's own state needs no lock. When the queue is full a new job is
dropped with one debug line: every strategy repeats its work (the next poll, the next
heartbeat), so nothing a dropped job would have done is lost for good.
"""
from __future__ import annotations

import difflib
import heapq
import itertools
import logging
import re
import threading
import time
from typing import Any, Callable, Iterable

from ..etf import Atom

__all__ = ["REQUIRED", "STRATEGIES", "ConfigError", "Strategy", "Worker", "inspect_atom"]

REQUIRED = object()    # marks a config key with no default

# name -> Strategy subclass; each strategy file adds itself with one line.
STRATEGIES: dict[str, type] = {}

QUEUE_LIMIT = 64       # jobs waiting on one topology's worker; more are dropped

_LOGGER = logging.getLogger("clusterkit.cluster")


class ConfigError(ValueError):
    """A topology that cannot start: unknown strategy, unknown or missing key, bad value.

    `topology` and `key` say where; str(err) names both."""

    def __init__(self, message: str, topology: str | None = None, key: str | None = None):
        self.topology = topology
        self.key = key
        super().__init__(f"topology {topology}: {message}" if topology is not None
                         else message)


# --------------------------------------------------------------------------- atoms

_IDENTIFIER = re.compile(r"[^\W\d]\w*[?!]?", re.UNICODE)
_AT_IDENTIFIER = re.compile(r"[^\W\d][\w@]*", re.UNICODE)
_ALIAS = re.compile(r"Elixir(\.[A-Z]\w*)+")
_OPERATORS = frozenset(
    "+ - * / ++ -- ** ! ^ | || && ||| &&& <<< >>> <<~ ~>> <~ ~> <~> <|> == != === !== "
    "=~ < > <= >= |> <- -> \\\\ :: .. ... & @ = ^^^ ~~~ not and or in when".split())


def inspect_atom(name: Any) -> str:
    """An atom as Elixir's `inspect` shows it: `:a`, `:app1@computer`, `:"a@127.0.0.1"`."""
    s = str(name)
    if s in ("nil", "true", "false"):
        return s
    if _ALIAS.fullmatch(s):
        return s[len("Elixir."):]
    if _IDENTIFIER.fullmatch(s) or _AT_IDENTIFIER.fullmatch(s) or s in _OPERATORS:
        return ":" + s
    return ':"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------- worker

class _Timer:
    __slots__ = ("due", "fn", "args", "cancelled")

    def __init__(self, due: float, fn: Callable, args: tuple):
        self.due, self.fn, self.args, self.cancelled = due, fn, args, False

    def cancel(self) -> None:
        self.cancelled = True


class Worker:
    """One thread that runs a topology's jobs in order, and its timers when they are due.

    `submit` never blocks: past QUEUE_LIMIT waiting jobs it drops the job and returns
    False. Timers follow `clock`; with a fake clock, call `wake()` after moving it.
    """

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic,
                 log: logging.Logger | None = None, limit: int = QUEUE_LIMIT):
        self.name = name
        self.clock = clock
        self.log = log or _LOGGER
        self.limit = limit
        self._jobs: list[tuple[Callable, tuple]] = []
        self._timers: list[tuple[float, int, _Timer]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._dropped = False
        self._busy = False
        self.guard: Callable[[], bool] | None = None     # False: stop before the next job
        self.on_guard_stop: Callable[[], None] | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._stopping

    @property
    def in_worker(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """End the thread after the job it is running; waiting jobs and timers are dropped.

        Waits at most `timeout` for a job in progress (a connect can take seconds), so
        stop returns promptly; the thread then ends on its own."""
        with self._cond:
            self._stopping = True
            self._jobs.clear()
            self._timers.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def submit(self, fn: Callable, *args) -> bool:
        with self._cond:
            if self._stopping:
                return False
            if len(self._jobs) >= self.limit:
                if not self._dropped:
                    self.log.debug("%s: %d jobs waiting, dropping %s (the next round "
                                   "repeats it)", self.name, len(self._jobs),
                                   getattr(fn, "__name__", fn))
                self._dropped = True
                return False
            self._dropped = False
            self._jobs.append((fn, args))
            self._cond.notify_all()
            return True

    def call_later(self, delay: float, fn: Callable, *args) -> _Timer:
        """Run fn(*args) on this worker `delay` seconds from now (by `clock`)."""
        timer = _Timer(self.clock() + max(0.0, delay), fn, args)
        with self._cond:
            if not self._stopping:
                heapq.heappush(self._timers, (timer.due, next(self._seq), timer))
                self._cond.notify_all()
        return timer

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def idle(self) -> bool:
        """No job waiting or running (timers may be pending): for tests."""
        with self._cond:
            return not self._jobs and not self._busy

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait (real time) until no job is waiting or running; False at the deadline."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._stopping or (not self._jobs and not self._busy), timeout)

    def _next(self):
        with self._cond:
            while True:
                if self._busy:
                    self._busy = False
                    self._cond.notify_all()     # wait_idle callers look again
                if self._stopping:
                    return None
                if self._jobs:
                    self._busy = True
                    return self._jobs.pop(0)
                while self._timers and self._timers[0][2].cancelled:
                    heapq.heappop(self._timers)
                wait = None
                if self._timers:
                    wait = self._timers[0][0] - self.clock()
                    if wait <= 0:
                        timer = heapq.heappop(self._timers)[2]
                        self._busy = True
                        return timer.fn, timer.args
                self._cond.wait(wait)

    def _main(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            fn, args = job
            if self.guard is not None and not self.guard():
                # The node this topology serves has stopped: end, as a supervisor's
                # children end with their application.
                self.stop(0)
                if self.on_guard_stop is not None:
                    self.on_guard_stop()
                return
            try:
                fn(*args)
            except Exception:   # one bad job must not end the topology
                self.log.exception("%s: %s failed", self.name, getattr(fn, "__name__", fn))


# --------------------------------------------------------------------------- strategy

class Strategy:
    """libcluster's Cluster.Strategy: validate config, diff node sets, connect, log.

    A subclass sets `name`, `defaults` (every key it knows -> libcluster's default, or
    REQUIRED) and `aliases` (a plausible wrong key -> the right one), may override
    `validate()` to check values, and does its work in `init()`, which runs on the
    worker thread right after `start()`. Timers: `self.call_later(seconds, fn)`.
    """

    name: str = ""
    defaults: dict = {}
    aliases: dict = {}

    def __init__(self, topology: str, config: dict, *, connect: Callable,
                 disconnect: Callable, list_nodes: Callable, self_node: Any,
                 clock: Callable[[], float] = time.monotonic,
                 log: logging.Logger | None = None, loop=None,
                 epmd_port: int | None = None):
        self.topology = str(topology)
        self.connect = connect
        self.disconnect = disconnect
        self.list_nodes = list_nodes
        self.self_node = Atom(self_node)
        self.clock = clock
        self.log = log or _LOGGER
        self.loop = loop            # the node's asyncio loop, for strategies with sockets
        self.epmd_port = epmd_port  # the node's EPMD port (None: ERL_EPMD_PORT or 4369)
        self.config = self._fill(config)
        self.seen: set[Atom] = set()
        self._seen_lock = threading.Lock()     # status() reads it from other threads
        self.worker = Worker(f"cluster-{self.topology}", clock, self.log)
        self.worker.on_guard_stop = self.stop
        self.validate()

    # -- config

    def config_error(self, message: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, self.topology, key)

    def _fill(self, config) -> dict:
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise self.config_error(f"config must be a dict of {self.name} settings "
                                    f"(known keys: {self._known()}), not "
                                    f"{type(config).__name__}", "config")
        out = {}
        for key in config:
            if not isinstance(key, str):
                raise self.config_error(f"config keys are strings; {key!r} is not", "config")
            if key not in self.defaults:
                raise self.config_error(self._unknown_key(key), key)
        for key, default in self.defaults.items():
            if key in config:
                out[key] = config[key]
            elif default is REQUIRED:
                raise self.config_error(f"strategy {self.name} needs config key {key!r}",
                                        key)
            else:
                out[key] = default
        return out

    def _known(self) -> str:
        return ", ".join(sorted(self.defaults)) or "none"

    def _unknown_key(self, key: str) -> str:
        right = self.aliases.get(key)
        if right is None:
            close = difflib.get_close_matches(key, list(self.defaults), n=1, cutoff=0.7)
            right = close[0] if close else None
        hint = f"; did you mean {right!r}?" if right else ""
        return (f"strategy {self.name} has no config key {key!r}{hint} "
                f"(known keys: {self._known()})")

    def validate(self) -> None:
        """Check the values in self.config; raise self.config_error(...) naming the key."""

    def check_ms(self, key: str, infinity: bool = False) -> float | None:
        """A config value in milliseconds (libcluster's unit), as seconds; None for
        infinity when `infinity` allows it."""
        value = self.config[key]
        if infinity and (value is None or (isinstance(value, str) and value == "infinity")):
            self.config[key] = "infinity"
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            also = " or 'infinity'" if infinity else ""
            raise self.config_error(f"{key} is in milliseconds: a positive number{also}, "
                                    f"not {value!r}", key)
        return value / 1000

    def check_nodes(self, key: str) -> list[Atom]:
        """A config value that lists node names, like ['a@127.0.0.1', 'b@127.0.0.1']."""
        from ..names import InvalidNodeName, parse_remote

        value = self.config[key]
        if isinstance(value, str):
            raise self.config_error(
                f"{key} is a list of node names, not the string {value!r}; to read "
                f"'a@host,b@host' write {value!r}.split(',')", key)
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise self.config_error(f"{key} is a list of node names, like "
                                    f"['a@127.0.0.1'], not {value!r}", key)
        nodes = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.config_error(f"{key}[{i}]: {item!r} is not a node name", key)
            try:
                nodes.append(parse_remote(item.strip()).atom)
            except InvalidNodeName as e:
                raise self.config_error(f"{key}[{i}]: {e}", key) from None
        return nodes

    # -- life cycle

    def start(self) -> None:
        """Start the worker and run init() on it; returns at once."""
        self.worker.start()
        self.worker.submit(self.init)

    def init(self) -> None:
        """The strategy's first work, on the worker thread (libcluster's init/1)."""

    def stop(self) -> None:
        """End timers and the worker; connections stay as they are, as in libcluster.

        Also called (on the worker thread) when the node this topology serves has
        stopped; a strategy with sockets closes them here."""
        self.worker.stop()

    def stop_with(self, alive: Callable[[], bool]) -> None:
        """End this topology before its next job once alive() is False (ck.cluster.start
        passes the node's liveness)."""
        self.worker.guard = alive

    @property
    def running(self) -> bool:
        return self.worker.running

    def submit(self, fn: Callable, *args) -> bool:
        return self.worker.submit(fn, *args)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until the work started so far is done (init's first round, say)."""
        return self.worker.wait_idle(timeout)

    def call_later(self, delay: float, fn: Callable, *args):
        return self.worker.call_later(delay, fn, *args)

    # -- libcluster's connect_nodes / disconnect_nodes

    def _listed(self) -> set[Atom]:
        try:
            return {Atom(n) for n in self.list_nodes()}
        except Exception as e:
            self.log.warning("[libcluster:%s] list_nodes failed: %s", self.topology, e)
            return set()

    def connect_nodes(self, nodes: Iterable) -> list:
        """Connect every node in `nodes` not already listed and not this node.

        Returns libcluster's bad_nodes: [(node, reason), ...], empty when all is well."""
        wanted = [Atom(n) for n in dict.fromkeys(nodes)]
        with self._seen_lock:
            self.seen.update(n for n in wanted if n != self.self_node)
        listed = self._listed()
        bad = []
        # libcluster diffs MapSets, and a small MapSet iterates in sorted order: so
        # nodes are tried (and logged) sorted, whatever order they were found in.
        for n in sorted(set(wanted) - listed - {self.self_node}):
            try:
                result = self.connect(n)
            except Exception as e:
                result = e
            if result is True:
                self._say(logging.INFO, f"connected to {inspect_atom(n)}")
            elif result == "ignored":
                self._say(logging.WARNING,
                          f"unable to connect to {inspect_atom(n)}: not part of network")
                bad.append((n, Atom("ignored")))
            elif isinstance(result, Exception):
                self._say(logging.WARNING, f"unable to connect to {inspect_atom(n)}: {result}")
                bad.append((n, result))
            else:
                self._say(logging.WARNING, f"unable to connect to {inspect_atom(n)}")
                bad.append((n, False))
        return bad

    def disconnect_nodes(self, nodes: Iterable) -> list:
        """Disconnect every node in `nodes` that is listed (never this node)."""
        wanted = [Atom(n) for n in dict.fromkeys(nodes)]
        with self._seen_lock:
            self.seen.difference_update(wanted)
        listed = self._listed()
        bad = []
        for n in sorted((set(wanted) & listed) - {self.self_node}):
            try:
                result = self.disconnect(n)
            except Exception as e:
                result = e
            shown = inspect_atom(n)
            if result is True:
                self._say(logging.INFO, f"disconnected from {shown}")
            elif result is False:
                self._say(logging.WARNING,
                          f"disconnect from {shown} failed because we're already disconnected")
            elif result == "ignored":
                self._say(logging.WARNING,
                          f"disconnect from {shown} failed because it is not part of the network")
            else:
                self._say(logging.WARNING, f"disconnect from {shown} failed with: {result!r}")
                bad.append((n, result))
        return bad

    def _say(self, level: int, message: str) -> None:
        self.log.log(level, "[libcluster:%s] %s", self.topology, message)

    def info(self, message: str) -> None:
        self._say(logging.INFO, message)

    def warn(self, message: str) -> None:
        self._say(logging.WARNING, message)

    def debug(self, message: str) -> None:
        self._say(logging.DEBUG, message)

    # -- status

    def status(self) -> dict:
        listed = self._listed()
        with self._seen_lock:
            seen = sorted(self.seen)
        return {"strategy": self.name, "running": self.running, "seen": seen,
                "connected": [n for n in seen if n in listed]}
