"""The public surface: what lesson cells call. Names mirror Elixir's on purpose.

One node per Python process, like one node per BEAM: `start()` makes it, and
`Node`, `net_adm`, `net_kernel`, `rpc`, `send`, `receive` ... act on it.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

from . import cookie as cookie_file
from .etf import Atom, Pid
from .names import parse_local, parse_remote
from .runtime import current, rex
from .runtime.errors import BadArg, CallError, NotAlive
from .runtime.node import LocalNode

log = logging.getLogger("clusterkit")

_node: LocalNode | None = None
_lock = threading.Lock()
NONODE = Atom("nonode@nohost")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time, so Jupyter's capture sees it."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def _setup_logging() -> None:
    root = logging.getLogger("clusterkit")
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        root.addHandler(_StderrHandler())
    if root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    root.propagate = False


def node() -> LocalNode:
    """This process's node (the calling thread's, when a test runs two in one process)."""
    return current.node()


def _allow_list(allow) -> frozenset | None:
    if allow is None:
        return None
    if isinstance(allow, str):
        raise TypeError("allow takes a list of node names, like ['b@127.0.0.1']")
    nodes = set()
    for item in allow:
        try:
            nodes.add(parse_remote(str(item)).atom)
        except ValueError as exc:
            raise ValueError(f"allow: {item!r} is not a node name: {exc}") from None
    return frozenset(nodes) or None      # like net_kernel: an empty list allows all


def start(name: str, cookie: str | None = None, *, hidden: bool = False,
          longnames: bool | None = None, net_ticktime: float | None = None,
          port_range: tuple[int, int] | None = None, epmd_port: int | None = None,
          listen_address: str | None = None, connect_all: bool | None = None,
          dist_buf_busy_limit: int | None = None, config: str | None = None,
          resolver=None, allow=None, rpc_allow=None) -> Atom:
    """Start distribution here, like `iex --sname a --cookie secret` (or `--name`).

    `resolver=("127.0.0.1", 5353)` (or CLUSTERKIT_RESOLVER) names the nameserver for the
    host part of node names. With no listen_address, a node whose host is a loopback
    address listens there only (one address per node); others listen everywhere.

    allow: the only nodes that may connect to this one, like net_kernel:allow/1
    (others get `not_allowed` and Erlang's log line; as in Erlang an empty list
    restricts nothing). rpc_allow: the only modules other nodes may call through
    rpc/erpc here; other calls get {badrpc, {'EXIT', {notsup, Reason}}}. The
    cookie is a password, and the only one: whoever holds it can run code here.
    """
    global _node
    _setup_logging()
    with _lock:
        if _node is not None and _node.alive:
            raise RuntimeError(f"this process is already the node {_node.atom}; "
                               "call ck.stop() before starting another")
        settings: dict[str, Any] = {}
        if config is not None:
            # Imported only when used: the parser is not needed for most starts.
            from . import config as config_mod
            settings = config_mod.kernel_settings(config)
        node_name = parse_local(name, longnames)
        allowed = _allow_list(allow)
        rpc_allowed = None if rpc_allow is None else frozenset(map(str, rpc_allow))
        if cookie is None:
            cookie = cookie_file.read_or_create()
        if epmd_port is None:
            epmd_port = int(os.environ.get("ERL_EPMD_PORT", "4369"))
        if net_ticktime is None:
            net_ticktime = settings.get("net_ticktime", 60)
        if port_range is None:
            # Like Erlang, inet_dist_listen_max counts only with inet_dist_listen_min.
            lo = settings.get("inet_dist_listen_min", 0)
            port_range = (lo, settings.get("inet_dist_listen_max", lo) if lo else 0)
        if connect_all is None:
            connect_all = settings.get("connect_all", True)
        extra = {}
        busy = dist_buf_busy_limit or settings.get("dist_buf_busy_limit")
        if busy is not None:
            # Erlang's +zdbbl is in kilobytes; sys.config has no such key, so both come
            # here in bytes.
            extra["dist_buf_busy_limit"] = int(busy)
        from .dns import hosts
        resolve = hosts.host_resolver(resolver)
        if listen_address is None:
            listen_address = hosts.listen_address(node_name.host, resolve)
        n = LocalNode(node_name, str(cookie), hidden=hidden, net_ticktime=net_ticktime,
                      epmd_port=epmd_port, port_range=port_range,
                      listen_address=listen_address, connect_all=connect_all,
                      epmd_host=hosts.epmd_host(listen_address), resolve_host=resolve,
                      **extra)
        n.allow, n.rpc_allow = allowed, rpc_allowed     # read by runtime/peers.py, cnode.py
        n.start()
        _node = n
        current.set_default(n)
    if settings:
        try:
            config_mod.sync_nodes(n, settings)
        except config_mod.SyncNodesError:
            stop()              # Erlang stops booting when a mandatory node is missing
            raise
    return n.atom


def stop() -> None:
    """Stop distribution (net_kernel:stop/0): close connections, leave EPMD."""
    global _node
    with _lock:
        if _node is not None:
            _node.stop()
            _node = None


def self() -> Pid:
    """The pid of the calling thread's process (a cell's shell process in Jupyter)."""
    return node().current_process().pid


def send(dest: Any, message: Any) -> Any:
    """send(dest, message): dest is a pid, a registered name or a (name, node) tuple.

    To another node, this waits while that connection has more than its busy limit
    (dist_buf_busy_limit, 1 MiB) waiting to go out, as an Erlang sender is suspended;
    if the connection goes down meanwhile, it returns and the message is dropped."""
    return node().send(dest, message)


def spawn(fn, *args) -> Pid:
    """Run fn(*args) in a new process with a thread of its own; returns its pid.
    The process ends when fn returns (reason normal) or raises (the error is the reason)."""
    return node().spawn(fn, args)


def spawn_link(fn, *args) -> Pid:
    """spawn, linked to the calling process: if either ends abnormally, the other gets an
    exit signal (a cell's shell process receives it as an ('EXIT', pid, reason) message)."""
    return node().spawn(fn, args, link=True)


def link(pid: Pid) -> bool:
    """Link the calling process with `pid`, on this node or another."""
    node().link(pid)
    return True


_NO_DEFAULT = object()


def receive(timeout: float | None = None, match=None, default=_NO_DEFAULT):
    """Take the next (matching) message of this process's mailbox.

    Waits `timeout` seconds (None: forever). On timeout, returns `default` if given,
    otherwise raises ReceiveTimeout. `match` is a function message -> bool.
    """
    if default is _NO_DEFAULT:
        return node().receive(timeout, match)
    return node().receive(timeout, match, default)


def flush() -> list:
    """Print and return every waiting message, like iex's flush()."""
    messages = node().current_process().mailbox.drain()
    for m in messages:
        print(repr(m))
    return messages


def register(name: str, pid: Pid) -> bool:
    node().register(name, pid)
    return True


def unregister(name: str) -> bool:
    node().unregister(name)
    return True


def whereis(name: str) -> Pid | None:
    return node().whereis(name)


def monitor(target: Any) -> Any:
    """Process.monitor: ('DOWN', ref, 'process', obj, reason) arrives when it ends."""
    n = node()
    return n.monitor(n.current_process().pid, target)


def demonitor(ref) -> bool:
    node().demonitor(ref)
    return True


class Node:
    """Elixir's Node module."""

    @staticmethod
    def self() -> Atom:
        return node().atom if Node.alive() else NONODE

    @staticmethod
    def alive() -> bool:
        try:
            current.node()
        except NotAlive:
            return False
        return True

    @staticmethod
    def list(kind: str = "visible") -> list[Atom]:
        if not Node.alive():
            return [NONODE] if kind == "this" else []
        return node().nodes(str(kind))

    @staticmethod
    def connect(name: str):
        if not Node.alive():
            return Atom("ignored")
        n = node()
        return _connect(n, parse_remote(name).atom)

    @staticmethod
    def disconnect(name: str):
        if not Node.alive():
            return Atom("ignored")
        return node().disconnect(Atom(name))

    @staticmethod
    def ping(name: str) -> Atom:
        return net_adm.ping(name)

    @staticmethod
    def set_cookie(*args) -> bool:
        """Node.set_cookie(cookie) or Node.set_cookie(node, cookie)."""
        n = node()
        if len(args) == 1:
            n.set_cookie(str(args[0]))
        elif len(args) == 2:
            n.set_cookie(str(args[1]), Atom(args[0]))
        else:
            raise TypeError("Node.set_cookie(cookie) or Node.set_cookie(node, cookie)")
        return True

    @staticmethod
    def get_cookie(name: str | None = None) -> Atom:
        if not Node.alive():
            return Atom("nocookie")
        n = node()
        return Atom(n.cookie_for(Atom(name)) if name else n.cookie)

    @staticmethod
    def monitor(name: str, flag: bool = True) -> bool:
        """erlang:monitor_node/2: ('nodedown', node) arrives when that node goes."""
        n = node()
        target = parse_remote(name).atom
        me = n.current_process().pid
        if flag and not _connect(n, target):
            n.send(me, (Atom("nodedown"), target))
            return True
        n.runtime.run(_async(n.monitor_node, me, target, flag))
        return True


class net_adm:  # noqa: N801 - Erlang's module name
    @staticmethod
    def ping(name: str) -> Atom:
        if not Node.alive():
            return Atom("pang")
        n = node()
        target = parse_remote(name).atom
        if target == n.atom:
            return Atom("pong")
        if not _connect(n, target):
            return Atom("pang")
        try:
            reply = n.call((Atom("net_kernel"), target), (Atom("is_auth"), n.atom),
                           timeout=max(n.net_ticktime, 10), label="net_adm.ping")
        except CallError:
            return Atom("pang")
        return Atom("pong") if reply == Atom("yes") else Atom("pang")


class net_kernel:  # noqa: N801 - Erlang's module name
    @staticmethod
    def monitor_nodes(flag: bool, node_type: str | None = None,
                      nodedown_reason: bool = False) -> Atom:
        """The caller receives ('nodeup', node) and ('nodedown', node) messages.

        With node_type= ('visible', 'hidden', 'all') or nodedown_reason=True, messages
        carry a third element, a dict of info, as in Erlang's monitor_nodes/2.
        """
        n = node()
        options = {}
        if node_type is not None:
            if node_type not in ("visible", "hidden", "all"):
                raise BadArg("node_type is 'visible', 'hidden' or 'all'")
            options["node_type"] = node_type
        if nodedown_reason:
            options["nodedown_reason"] = True
        n.runtime.run(_async(n.monitor_nodes, n.current_process().pid, flag, options))
        return Atom("ok")

    @staticmethod
    def connect_node(name: str):
        return Node.connect(name)

    @staticmethod
    def get_net_ticktime() -> float:
        return node().net_ticktime


class rpc:  # noqa: N801 - Erlang's module name
    @staticmethod
    def call(target_node: str, module: str, function: str, args=(), timeout=None):
        return rex.call(node(), Atom(target_node), module, function, list(args), timeout)

    @staticmethod
    def cast(target_node: str, module: str, function: str, args=()):
        n = node()
        n.send((Atom("rex"), Atom(target_node)),
               (Atom("$gen_cast"), (Atom("cast"), Atom(module), Atom(function), list(args),
                                    n.current_process().pid)))
        return True


def _connect(n: LocalNode, target: Atom) -> bool:
    """Connect with a deadline: EPMD lookup plus handshake, each bounded by setup_time."""
    try:
        return n.runtime.run(n.connect(target), timeout=3 * n.setup_time)
    except TimeoutError:
        log.warning("connecting to %s did not finish within %.0f s", target,
                    3 * n.setup_time)
        return False


async def _async(fn, *args):
    return fn(*args)
