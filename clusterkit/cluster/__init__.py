"""ck.cluster: libcluster's Cluster.Supervisor, with its strategies.

    ck.cluster.start({"talkies": {"strategy": "epmd",
                                  "config": {"hosts": ["a@127.0.0.1", "b@127.0.0.1"]}}})
    ck.cluster.status()      # {"talkies": {"strategy": "epmd", "seen": [...], ...}}
    ck.cluster.stop()        # strategies end; connections stay

A topology is a name mapped to {"strategy": ..., "config": {...}}, and optionally the
callables "connect", "disconnect" and "list_nodes" (each takes a node name, or nothing
for list_nodes). Their defaults are libcluster's: Node.connect, Node.disconnect and
Node.list("connected") of the node that called start. The strategy is a name from
STRATEGIES ("epmd", or libcluster's own spelling "Cluster.Strategy.Epmd") or a
Strategy subclass.

Strategies live one per file in this package (see base.py for the shared part). Each
file registers its class with one line, `STRATEGIES[Name.name] = Name`; this package
imports every module in it, so a new strategy needs no edit here.

Contract: may import `clusterkit.api`, `clusterkit.runtime`, `clusterkit.etf`,
`clusterkit.names`, `clusterkit.epmd`, `clusterkit.erlterm`; imported by `lab` and by
users. Runtime never imports it.
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
import re
import threading
from typing import Any, Callable

from .base import REQUIRED, STRATEGIES, ConfigError, Strategy, inspect_atom

__all__ = ["ConfigError", "REQUIRED", "STRATEGIES", "Strategy", "inspect_atom", "start",
           "status", "stop", "running"]

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base" and not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

_SPEC_KEYS = ("strategy", "config", "connect", "disconnect", "list_nodes")
_SPEC_ALIASES = {"strategy_opts": "config", "opts": "config", "options": "config",
                 "child_spec": None}

_running: dict[str, Strategy] = {}
_lock = threading.Lock()


def _snake(name: str) -> str:
    # "LocalEpmd" -> local_epmd, "DNSPoll" -> dns_poll, "Kubernetes.DNSSRV" -> kubernetes_dnssrv
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_",
                  name).replace(".", "_").lower()


def resolve_strategy(topology: str, strategy: Any) -> type[Strategy]:
    """A strategy class from a name ("epmd", "Cluster.Strategy.LocalEpmd") or a class."""
    if isinstance(strategy, type):
        if issubclass(strategy, Strategy):
            return strategy
        raise ConfigError(f"strategy {strategy.__name__} is not a ck.cluster.Strategy "
                          "subclass", topology, "strategy")
    if not isinstance(strategy, str):
        raise ConfigError(f"strategy must be a name such as 'epmd' or a Strategy class, "
                          f"not {strategy!r}", topology, "strategy")
    key = strategy
    for prefix in ("Elixir.Cluster.Strategy.", "Cluster.Strategy."):
        if key.startswith(prefix):
            key = _snake(key[len(prefix):])
    key = key.lower() if key.lower() in STRATEGIES else key
    if key in STRATEGIES:
        return STRATEGIES[key]
    known = ", ".join(sorted(STRATEGIES))
    close = difflib.get_close_matches(key, list(STRATEGIES), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown strategy {strategy!r}{hint} (known strategies: {known})",
                      topology, "strategy")


def _default_calls(local) -> dict[str, Callable]:
    """libcluster's defaults, bound to the node that called start (tests run two nodes in
    one process; the worker thread must mean the right one)."""
    from ..api import Node

    if local is None:
        return {"connect": Node.connect, "disconnect": Node.disconnect,
                "list_nodes": lambda: Node.list("connected")}

    def connect(name):
        with local.as_current():
            return Node.connect(name)

    def disconnect(name):
        with local.as_current():
            return Node.disconnect(name)

    def list_nodes():
        with local.as_current():
            return Node.list("connected")

    return {"connect": connect, "disconnect": disconnect, "list_nodes": list_nodes}


def _build(name: Any, spec: Any, local, clock) -> Strategy:
    if not isinstance(name, str):
        raise ConfigError(f"a topology name is a string, not {name!r}")
    if not isinstance(spec, dict):
        raise ConfigError(f"a topology is a dict like {{'strategy': 'epmd', 'config': "
                          f"{{...}}}}, not {type(spec).__name__}", name)
    for key in spec:
        if key not in _SPEC_KEYS:
            if key in _SPEC_ALIASES:
                right = _SPEC_ALIASES[key]
                hint = ("; did you mean 'config'?" if right else
                        ": clusterkit runs each topology itself, so it has no child_spec")
            else:
                close = difflib.get_close_matches(str(key), _SPEC_KEYS, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown topology key {key!r}{hint} (known keys: "
                              f"{', '.join(_SPEC_KEYS)})", name, str(key))
    if "strategy" not in spec:
        raise ConfigError("missing key 'strategy' (a name such as 'epmd', or a Strategy "
                          "class)", name, "strategy")
    cls = resolve_strategy(name, spec["strategy"])
    calls = _default_calls(local)
    for key in ("connect", "disconnect", "list_nodes"):
        if spec.get(key) is not None:
            if not callable(spec[key]):
                raise ConfigError(f"{key} must be a function (connect and disconnect take "
                                  f"a node name, list_nodes takes nothing), not "
                                  f"{spec[key]!r}", name, key)
            calls[key] = spec[key]
    self_node = local.atom if local is not None else "nonode@nohost"
    loop = local.runtime.loop if local is not None else None
    kw = {"clock": clock} if clock is not None else {}
    if local is not None:
        kw["epmd_port"] = local.epmd_port
    strategy = cls(name, spec.get("config"), self_node=self_node, loop=loop, **calls, **kw)
    if local is not None:
        strategy.stop_with(lambda: local.alive)
    return strategy


def start(topologies: dict, *, wait: bool = True, timeout: float = 10.0, clock=None) -> None:
    """Start every topology in `topologies` (name -> spec), like Cluster.Supervisor.

    All are checked before any starts, so one mistake starts nothing. Each strategy
    works on a thread of its own; like libcluster's strategies, which do their first
    round in init, start returns once that first round is done (at most `timeout`
    seconds), so what it logged shows where start was called. wait=False returns at
    once."""
    from ..runtime import current
    from ..runtime.errors import NotAlive

    if not isinstance(topologies, dict):
        raise ConfigError("ck.cluster.start takes a dict of topologies, like "
                          "{'my_cluster': {'strategy': 'epmd', 'config': {'hosts': [...]}}}")
    try:
        local = current.node()
    except NotAlive:
        local = None
    built = [_build(name, spec, local, clock) for name, spec in topologies.items()]
    with _lock:
        for s in built:
            if s.topology in _running and _running[s.topology].running:
                raise ConfigError(f"already running; call ck.cluster.stop({s.topology!r}) "
                                  "first", s.topology)
        for s in built:
            _running[s.topology] = s
    for s in built:
        s.start()
    if wait:
        for s in built:
            s.wait_idle(timeout)


def stop(name: str | None = None) -> None:
    """Stop one topology (or all): its timers and sockets end, connections stay."""
    with _lock:
        if name is None:
            chosen = list(_running.values())
            _running.clear()
        else:
            if name not in _running:
                known = ", ".join(sorted(_running)) or "none"
                raise ConfigError(f"no topology of that name is running (running: {known})",
                                  name)
            chosen = [_running.pop(name)]
    for s in chosen:
        s.stop()


def running(name: str) -> Strategy | None:
    """The running strategy of a topology (for tests and the lab)."""
    with _lock:
        return _running.get(name)


def status() -> dict:
    """{topology: {"strategy": name, "running": bool, "seen": [...], "connected": [...]}}"""
    with _lock:
        chosen = sorted(_running.items())
    return {name: s.status() for name, s in chosen}
