"""Phoenix.PubSub on `pg`, speaking the PG2 adapter's messages exactly.

    PubSub.start("my_pubsub")                     # like {Phoenix.PubSub, name: :my_pubsub}
    PubSub.subscribe("my_pubsub", "user:123")     # the calling process subscribes
    PubSub.broadcast("my_pubsub", "user:123", {"event": "hi"})

What goes over the wire is what Phoenix.PubSub.PG2 (phoenix_pubsub 2.x) does, so a
clusterkit node and an Elixir node running Phoenix.PubSub with the same name exchange
broadcasts:

- the pg scope is `'Elixir.Phoenix.PubSub'`, and the group is the adapter name,
  `Module.concat(name, "Adapter")` (`:my_pubsub` gives `:"Elixir.my_pubsub.Adapter"`),
  with `..._2` to `..._N` when pool_size is above 1;
- each group has a worker, registered locally under the group's atom and joined to it;
- a broadcast sends `{forward_to_local, Topic, Message, Dispatcher}` to each member of
  one group on another node (Phoenix picks the group by hashing the sender's pid), then
  dispatches on its own node; the receiving worker dispatches on its node;
- direct_broadcast sends that message to `{Group, Node}`.

Subscribers are local processes, each entry once per subscribe (subscribe twice, get
it twice), dropped when the process ends, as Phoenix's Registry does. Dispatch on this
node goes straight into the subscribers' mailboxes, in the publisher's order.

Left out: adapters other than PG2, `broadcast_pool_size` different from `pool_size`,
the `!` variants (Python names cannot end in `!`; errors raise anyway), and Registry's
partitions (one table per PubSub is plenty for a teaching node).
"""
from __future__ import annotations

import logging
import threading
import weakref
import zlib
from typing import Any, Callable

from .etf import Atom, Pid, encode, freeze
from .runtime import current
from .runtime import pg as _pg
from .runtime.atoms import DOWN, ERROR, OK
from .runtime.errors import BadArg

log = logging.getLogger("clusterkit")

SCOPE = Atom("Elixir.Phoenix.PubSub")
DEFAULT_DISPATCHER = Atom("Elixir.Phoenix.PubSub")
FORWARD_TO_LOCAL = Atom("forward_to_local")
ALREADY_STARTED = Atom("already_started")

Dispatcher = Callable[[list, Any, Any], None]
# Custom dispatchers by module name: fn(entries, from_, message), entries [(pid, metadata)].
_dispatchers: dict[Atom, Dispatcher] = {}

_instances: "weakref.WeakKeyDictionary[Any, dict[Atom, _PubSub]]" = \
    weakref.WeakKeyDictionary()
_instances_lock = threading.Lock()


def elixir_atom(name: Any) -> Atom:
    """The atom Elixir would use for `name`: an alias (`"MyApp.PubSub"`) gets the
    `Elixir.` prefix, anything else (`"my_pubsub"`) is the plain atom."""
    if isinstance(name, Atom):
        return name
    if not isinstance(name, str) or not name:
        raise BadArg(f"a PubSub name is a non-empty string or Atom, not {name!r}")
    if name[0].isupper() and not name.startswith("Elixir."):
        return Atom("Elixir." + name)
    return Atom(name)


def adapter_name(name: Any) -> Atom:
    """`Module.concat(name, "Adapter")`."""
    text = str(elixir_atom(name))
    if text.startswith("Elixir."):
        text = text[len("Elixir."):]
    return Atom(f"Elixir.{text}.Adapter")


def groups(name: Any, pool_size: int = 1) -> list[Atom]:
    """The PG2 adapter's groups: the adapter name, then `<adapter>_2` .. `<adapter>_N`."""
    adapter = adapter_name(name)
    return [adapter] + [Atom(f"{adapter}_{n}") for n in range(2, pool_size + 1)]


class _PubSub:
    """One PubSub on one node: its subscribers, its workers, its pg groups."""

    def __init__(self, node, name: Atom, pool_size: int):
        self.node = node
        self.name = name
        self.groups = groups(name, pool_size)
        self.scope = _pg.find(node, SCOPE)
        self._lock = threading.Lock()
        # topic -> ((pid, metadata), ...), replaced (never changed) so readers copy nothing
        self.topics: dict[Any, tuple] = {}
        self.watched: dict[Pid, Any] = {}        # subscriber -> its monitor's ref
        # The process registered under the PubSub's name, like Phoenix's Registry: it
        # watches subscribers and drops the entries of those that end.
        self.registry = node.spawn_process(self._registry_message, label=f"PubSub {name}")
        self.workers = [node.spawn_process(self._worker_message, label=str(g))
                        for g in self.groups]

    # --- subscribers --------------------------------------------------------------
    def subscribe(self, pid: Pid, topic: Any, metadata: Any) -> None:
        key = freeze(topic)
        with self._lock:
            self.topics[key] = self.topics.get(key, ()) + ((pid, metadata),)
            new = pid not in self.watched
            if new:
                self.watched[pid] = None
        if new:
            ref = self.node.monitor(self.registry.pid, pid)
            with self._lock:
                if self.watched.get(pid, 0) is None:
                    self.watched[pid] = ref

    def unsubscribe(self, pid: Pid, topic: Any) -> None:
        key = freeze(topic)
        with self._lock:
            left = tuple(e for e in self.topics.get(key, ()) if e[0] != pid)
            if left:
                self.topics[key] = left
            else:
                self.topics.pop(key, None)

    def _drop(self, pid: Pid) -> None:
        with self._lock:
            self.watched.pop(pid, None)
            for key, entries in list(self.topics.items()):
                left = tuple(e for e in entries if e[0] != pid)
                if len(left) != len(entries):
                    if left:
                        self.topics[key] = left
                    else:
                        del self.topics[key]

    def _registry_message(self, message: Any) -> None:
        # Any node may send anything to this name: only a DOWN that names a pid counts.
        if type(message) is tuple and len(message) == 5 and message[0] == DOWN \
                and isinstance(message[3], Pid):
            self._drop(message[3])
        else:
            log.debug("PubSub %s ignored %r", self.name, message)

    def subscribers(self, topic: Any) -> list:
        return [pid for pid, _meta in self.topics.get(freeze(topic), ())]

    # --- dispatch -------------------------------------------------------------------
    def dispatch(self, topic: Any, message: Any, dispatcher: Atom, from_: Any) -> None:
        entries = self.topics.get(freeze(topic), ())
        if not entries:
            return
        if dispatcher == DEFAULT_DISPATCHER:
            node = self.node
            for pid, _meta in entries:
                if pid != from_:
                    proc = node.local_process(pid)
                    if proc is not None:
                        node.deliver_local(proc, message)
            return
        # The dispatcher came off the wire: only an atom can name a registered one.
        fn = _dispatchers.get(dispatcher) if isinstance(dispatcher, Atom) else None
        if fn is None:
            log.warning("PubSub %s dropped a message for %r: no dispatcher %s is "
                        "registered on %s (PubSub.register_dispatcher)", self.name,
                        topic, dispatcher, self.node.atom)
            return
        try:
            fn(list(entries), from_, message)
        except Exception:
            log.exception("dispatcher %s failed on topic %r", dispatcher, topic)

    def _worker_message(self, message: Any) -> None:
        # Phoenix.PubSub.PG2Worker: dispatch forwarded broadcasts, ignore anything else.
        if type(message) is tuple and len(message) == 4 and message[0] == FORWARD_TO_LOCAL:
            _t, topic, payload, dispatcher = message
            self.dispatch(topic, payload, dispatcher, None)

    def group_for(self, pid: Pid) -> Atom:
        if len(self.groups) == 1:
            return self.groups[0]
        # Phoenix hashes the sender with erlang:phash2; any stable spread will do.
        return self.groups[zlib.crc32(repr(pid).encode()) % len(self.groups)]

    def forward(self, topic: Any, message: Any, dispatcher: Atom, sender: Pid) -> None:
        """The adapter's broadcast: one forward_to_local to each remote member."""
        node = self.node
        forward = (FORWARD_TO_LOCAL, topic, message, dispatcher)
        for pid in self.scope.get_members(self.group_for(sender)):
            if pid.node != node.atom:
                node.send(pid, forward)


def _instance(name: Any) -> _PubSub:
    node = current.node()
    inst = _instances.get(node, {}).get(elixir_atom(name))
    if inst is None:
        raise BadArg(f"unknown PubSub {elixir_atom(name)} on {node.atom}: start it with "
                     f"PubSub.start({str(name)!r})")
    return inst


def _dispatcher(dispatcher: Any) -> Atom:
    return DEFAULT_DISPATCHER if dispatcher is None else elixir_atom(dispatcher)


class PubSub:
    """Elixir's Phoenix.PubSub, with the same function names and arguments."""

    @staticmethod
    def start(name: Any, pool_size: int = 1) -> tuple:
        """Start a PubSub on this node: ('ok', pid), or ('error', ('already_started', pid))."""
        if not isinstance(pool_size, int) or pool_size < 1:
            raise BadArg(f"pool_size must be a positive integer, not {pool_size!r}")
        node = current.node()
        atom = elixir_atom(name)
        with _instances_lock:
            mine = _instances.setdefault(node, {})
            if atom in mine:
                return (ERROR, (ALREADY_STARTED, mine[atom].registry.pid))
            if _pg.find(node, SCOPE) is None:
                _pg.start(node, SCOPE)
            inst = _PubSub(node, atom, pool_size)
            node.register(atom, inst.registry.pid)
            for group, worker in zip(inst.groups, inst.workers):
                node.register(group, worker.pid)
            for group, worker in zip(inst.groups, inst.workers):
                inst.scope.call(inst.scope.join_local, group, [worker.pid], worker.pid)
            mine[atom] = inst
        return (OK, inst.registry.pid)

    @staticmethod
    def stop(name: Any) -> Atom:
        """Stop this node's PubSub `name`: its workers leave pg, subscribers are dropped."""
        node = current.node()
        with _instances_lock:
            inst = _instances.get(node, {}).pop(elixir_atom(name), None)
        if inst is None:
            raise BadArg(f"unknown PubSub {elixir_atom(name)} on {node.atom}")
        for proc in [inst.registry, *inst.workers]:
            node.exit_process(proc, Atom("shutdown"))
        return OK

    @staticmethod
    def subscribe(name: Any, topic: Any, metadata: Any = None) -> Atom:
        """The calling process subscribes to topic; each subscribe adds one entry."""
        inst = _instance(name)
        encode(topic)
        inst.subscribe(inst.node.current_process().pid, topic, metadata)
        return OK

    @staticmethod
    def unsubscribe(name: Any, topic: Any) -> Atom:
        inst = _instance(name)
        inst.unsubscribe(inst.node.current_process().pid, topic)
        return OK

    @staticmethod
    def broadcast(name: Any, topic: Any, message: Any, dispatcher: Any = None) -> Atom:
        """Every subscriber of topic on every connected node."""
        return PubSub.broadcast_from(name, None, topic, message, dispatcher)

    @staticmethod
    def broadcast_from(name: Any, from_: Pid, topic: Any, message: Any,
                       dispatcher: Any = None) -> Atom:
        """Like broadcast, but not to `from_` (only its own node can know who that is)."""
        inst = _instance(name)
        dispatcher = _dispatcher(dispatcher)
        # Remote sends first: a message that cannot travel raises there (ETFError),
        # before any local subscriber got it.
        inst.forward(topic, message, dispatcher, inst.node.current_process().pid)
        inst.dispatch(topic, message, dispatcher, from_)
        return OK

    @staticmethod
    def local_broadcast(name: Any, topic: Any, message: Any, dispatcher: Any = None) -> Atom:
        """Subscribers on this node only."""
        _instance(name).dispatch(topic, message, _dispatcher(dispatcher), None)
        return OK

    @staticmethod
    def local_broadcast_from(name: Any, from_: Pid, topic: Any, message: Any,
                             dispatcher: Any = None) -> Atom:
        _instance(name).dispatch(topic, message, _dispatcher(dispatcher), from_)
        return OK

    @staticmethod
    def direct_broadcast(node_name: Any, name: Any, topic: Any, message: Any,
                         dispatcher: Any = None) -> Atom:
        """Subscribers on node_name only, through that node's worker."""
        inst = _instance(name)
        forward = (FORWARD_TO_LOCAL, topic, message, _dispatcher(dispatcher))
        sender = inst.node.current_process().pid
        inst.node.send((inst.group_for(sender), Atom(node_name)), forward)
        return OK

    @staticmethod
    def node_name(name: Any) -> Atom:
        """The PG2 adapter's node_name: this node."""
        return _instance(name).node.atom

    @staticmethod
    def subscribers(name: Any, topic: Any) -> list:
        """The local subscribers of topic (Registry.lookup in Elixir), one per entry."""
        return _instance(name).subscribers(topic)

    @staticmethod
    def register_dispatcher(module: Any, fn: Dispatcher) -> Atom:
        """Name a custom dispatcher, as a module name Elixir would send:
        fn(entries, from_, message) with entries [(pid, metadata)]."""
        _dispatchers[elixir_atom(module)] = fn
        return OK
