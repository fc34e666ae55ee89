"""OTP 25's `pg`: process groups with eventually consistent membership, on the wire.

Read from OTP 25.2's `lib/kernel/src/pg.erl` (kernel 8.5.3) and checked against real
OTP 25 nodes. A scope is a process registered locally under the scope's name. Other
nodes' scope processes of the same name are its peers; they must take ours for one
of their own, so we send only what OTP 25's scope matches:

- at start and on every visible nodeup: `{discover, ScopePid}` to `{Scope, Node}`;
- `{discover, Peer}`: cast `{sync, ScopePid, [{Group, LocalPids}]}` back to Peer; if
  Peer is new, monitor it and send it our own `{discover, ScopePid}`;
- `{'$gen_cast', {sync, Peer, Groups}}`: Peer's groups replace what we knew of them;
- local joins and leaves go to every known peer as `{join, ScopePid, Group, PidOrPids}`
  and `{leave, ScopePid, PidOrPids, [Group]}`; a local member is monitored and leaves
  every group when it goes DOWN;
- a peer's members go when the peer scope goes DOWN (a nodedown brings that DOWN with
  reason noconnection), not on nodedown itself.

Anything else a peer sends is logged and ignored. (An OTP 25 scope crashes on an
unexpected message, the 3-tuple discover of OTP 26 and later among them, so we never
send one.) monitor_scope/monitor (OTP 25.1) are local: the watcher gets
`{Ref, join, Group, Pids}` and `{Ref, leave, Group, Pids}`.

Left out: `start_link` (a scope here lives as long as its node; there is no supervisor
to link to), the default scope started by the kernel (`start_pg`; call pg.start("pg")),
and OTP 26's 3-tuple discover and its `{'$gen_cast', {sync, ...}}` version field, which
an OTP 25 scope would crash on.

Threads: the scope's process runs its messages on the node's loop. Its group table is
read from any thread under a leaf lock (Erlang reads its ETS table the same way, without
asking the process); everything else is loop-owned. Work that can deliver to the scope
itself (a monitor of a dead process answers at once) is queued, so handlers never
re-enter.
"""
from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from ..etf import Atom, Pid, freeze
from .atoms import DOWN, ERROR, GEN_CAST, OK
from .errors import BadArg

if TYPE_CHECKING:
    from .node import LocalNode

log = logging.getLogger("clusterkit")

DISCOVER, SYNC, JOIN, LEAVE = Atom("discover"), Atom("sync"), Atom("join"), Atom("leave")
NOT_JOINED, ALREADY_STARTED = Atom("not_joined"), Atom("already_started")

# node -> {scope name -> Scope}; weak, so a stopped node's scopes go with it.
_scopes: "weakref.WeakKeyDictionary[LocalNode, dict[Atom, Scope]]" = \
    weakref.WeakKeyDictionary()
_scopes_lock = threading.Lock()


def start(node: "LocalNode", name: str) -> tuple:
    """pg:start(Scope): ('ok', pid), or ('error', ('already_started', pid))."""
    name = Atom(name)
    with _scopes_lock:
        scopes = _scopes.setdefault(node, {})
        existing = scopes.get(name)
        if existing is not None:
            return (ERROR, (ALREADY_STARTED, existing.pid))
        if node.whereis(name) is not None:
            raise BadArg(f"cannot start the pg scope {name}: the name is already "
                         f"registered to {node.whereis(name)!r}")
        scope = Scope(node, name)
        scopes[name] = scope
    node.runtime.run(_async(scope.begin), timeout=10)
    return (OK, scope.pid)


def get(node: "LocalNode", name: str) -> "Scope":
    """The scope `name` on `node`; BadArg (Erlang's badarg) when it was never started."""
    scope = _scopes.get(node, {}).get(Atom(name))
    if scope is None:
        raise BadArg(f"the pg scope {name} is not started on {node.atom}: call "
                     f"pg.start({str(name)!r}) first")
    return scope


def find(node: "LocalNode", name: str) -> "Scope | None":
    return _scopes.get(node, {}).get(Atom(name))


def _as_pids(pid_or_pids: Any) -> list:
    return list(pid_or_pids) if isinstance(pid_or_pids, list) else [pid_or_pids]


def _all_pids(pid_or_pids: Any) -> bool:
    return all(isinstance(p, Pid) for p in _as_pids(pid_or_pids))


def _remove_each(items: tuple | list, gone: list) -> list:
    """Erlang's `All -- Gone`: one occurrence per item of `gone`."""
    out = list(items)
    for item in gone:
        try:
            out.remove(item)
        except ValueError:
            pass
    return out


class Scope:
    def __init__(self, node: "LocalNode", name: Atom):
        self.node = node
        self.name = name
        self.proc = node.spawn_process(self._on_message, label=f"pg {name}")
        self.pid = self.proc.pid
        # group -> (all members, local members), newest first, as pg's ETS rows
        self._table: dict[Any, tuple[tuple, tuple]] = {}
        self._lock = threading.Lock()
        # loop-owned
        self.members: dict[Pid, tuple[Any, list]] = {}     # local pid -> (ref, groups)
        self.peers: dict[Pid, tuple[Any, dict]] = {}       # peer scope -> (ref, groups)
        self.watchers: dict[Any, tuple[Pid, Any]] = {}     # ref -> (pid, group or _ALL)
        self._downs: dict[Any, tuple[str, Pid]] = {}       # monitor ref -> (kind, pid)
        self._queue: deque = deque()
        self._busy = False

    # --- on the loop ---------------------------------------------------------------
    def begin(self) -> None:
        self.node.register(self.name, self.pid)
        self.node.add_node_hook(on_up=self._node_up)
        for peer in self.node.nodes("visible"):
            self._send_named(peer, (DISCOVER, self.pid))

    def _on_message(self, message: Any) -> None:
        self._run(self._handle, message)

    def _run(self, fn: Callable, *args) -> Any:
        """Run fn now unless the scope is already busy; what arrives meanwhile waits."""
        if self._busy:
            self._queue.append((fn, args))
            return None
        self._busy = True
        try:
            result = fn(*args)
            while self._queue:
                more, more_args = self._queue.popleft()
                try:
                    more(*more_args)
                except Exception:
                    log.exception("pg scope %s failed", self.name)
            return result
        finally:
            self._busy = False

    def _node_up(self, peer: Atom, hidden: Any) -> None:
        if not hidden and self.proc.alive:
            self._send_named(peer, (DISCOVER, self.pid))

    def _send_named(self, node: Atom, message: Any) -> None:
        self.node.send((self.name, node), message, sender=self.pid)

    def _send_noconnect(self, pid: Pid, message: Any) -> None:
        conn = self.node.connections.get(pid.node)
        if conn is not None and conn.up:
            self.node.send(pid, message)

    def _broadcast(self, message: Any) -> None:
        for peer in list(self.peers):
            self._send_noconnect(peer, message)

    def _handle(self, m: Any) -> None:
        if type(m) is tuple:
            n = len(m)
            if n == 2 and m[0] == DISCOVER and isinstance(m[1], Pid):
                return self._discover(m[1])
            if n == 4 and m[0] == JOIN and isinstance(m[1], Pid) and _all_pids(m[3]):
                return self._remote_join(m[1], freeze(m[2]), _as_pids(m[3]))
            if n == 4 and m[0] == LEAVE and isinstance(m[1], Pid) and _all_pids(m[2]) \
                    and isinstance(m[3], list):
                return self._remote_leave(m[1], _as_pids(m[2]), [freeze(g) for g in m[3]])
            if n == 2 and m[0] == GEN_CAST and type(m[1]) is tuple and len(m[1]) == 3 \
                    and m[1][0] == SYNC and isinstance(m[1][1], Pid) \
                    and isinstance(m[1][2], list):
                return self._sync(m[1][1], m[1][2])
            if n == 5 and m[0] == DOWN:
                return self._down(m[1])
        log.warning("pg scope %s ignored an unexpected message: %r", self.name, m)

    def _discover(self, peer: Pid) -> None:
        self.node.send(peer, (GEN_CAST, (SYNC, self.pid, self._local_groups())))
        if peer not in self.peers:
            ref = self._watch("peer", peer)
            self.peers[peer] = (ref, {})
            self._send_noconnect(peer, (DISCOVER, self.pid))

    def _watch(self, kind: str, pid: Pid) -> Any:
        ref = self.node.monitor(self.pid, pid)
        self._downs[ref] = (kind, pid)
        return ref

    def _local_groups(self) -> list:
        with self._lock:
            return [(g, list(local)) for g, (_all, local) in self._table.items() if local]

    def _sync(self, peer: Pid, groups: list) -> None:
        entry = self.peers.get(peer)
        ref = entry[0] if entry else self._watch("peer", peer)
        old = dict(entry[1]) if entry else {}
        new: dict = {}
        for item in groups:
            if type(item) is tuple and len(item) == 2 and isinstance(item[1], list) \
                    and _all_pids(item[1]):
                new[freeze(item[0])] = list(item[1])
            else:
                log.warning("pg scope %s ignored a malformed group in a sync from %r: %r",
                            self.name, peer, item)
        for group in set(old) | set(new):
            before, after = old.get(group, []), new.get(group, [])
            if before != after:
                self._update(group, add=after, remove=before, local=False)
                self._notify_diff(group, before, after)
        self.peers[peer] = (ref, new)

    def _remote_join(self, peer: Pid, group: Any, pids: list) -> None:
        entry = self.peers.get(peer)
        if entry is None:
            return          # a join from outside the overlay, or after its DOWN: pg drops it
        groups = entry[1]
        groups[group] = pids + groups.get(group, [])
        self._update(group, add=pids, remove=[], local=False)
        self._notify(group, JOIN, pids)

    def _remote_leave(self, peer: Pid, pids: list, groups: list) -> None:
        entry = self.peers.get(peer)
        if entry is None:
            return
        known = entry[1]
        for group in groups:
            left = _remove_each(known.get(group, []), pids)
            if left:
                known[group] = left
            else:
                known.pop(group, None)
            self._update(group, add=[], remove=pids, local=False)
            self._notify(group, LEAVE, pids)

    def _down(self, ref: Any) -> None:
        kind, pid = self._downs.pop(ref, (None, None))
        if kind == "member":
            entry = self.members.pop(pid, None)
            if entry is None or entry[0] != ref:
                return
            groups = entry[1]
            for group in groups:
                self._update(group, add=[], remove=[pid], local=True)
                self._notify(group, LEAVE, [pid])
            self._broadcast((LEAVE, self.pid, pid, list(dict.fromkeys(groups))))
        elif kind == "peer":
            entry = self.peers.pop(pid, None)
            if entry is None:
                return
            for group, pids in entry[1].items():
                self._update(group, add=[], remove=pids, local=False)
                self._notify(group, LEAVE, pids)
        elif kind == "watcher":
            for wref in [r for r, (w, _g) in self.watchers.items() if w == pid]:
                self.watchers.pop(wref, None)

    def join_local(self, group: Any, pids: list, wire: Any) -> Any:
        for pid in pids:
            entry = self.members.get(pid)
            if entry is None:
                self.members[pid] = (self._watch("member", pid), [group])
            else:
                entry[1].append(group)
        self._update(group, add=pids, remove=[], local=True)
        self._broadcast((JOIN, self.pid, group, wire))
        self._notify(group, JOIN, pids)
        return OK

    def leave_local(self, group: Any, pids: list, wire: Any) -> Any:
        left = []
        for pid in pids:
            entry = self.members.get(pid)
            if entry is None or group not in entry[1]:
                continue
            entry[1].remove(group)
            left.append(pid)
            if not entry[1]:
                del self.members[pid]
                self._downs.pop(entry[0], None)
                self.node.demonitor(entry[0])
        if not left:
            return NOT_JOINED
        self._update(group, add=[], remove=left, local=True)
        self._broadcast((LEAVE, self.pid, wire if len(left) == len(pids) else left,
                         [group]))
        self._notify(group, LEAVE, left)
        return OK

    def add_watcher(self, watcher: Pid, group: Any) -> tuple:
        ref = self.node.make_ref()
        if not any(w == watcher for w, _g in self.watchers.values()):
            self._watch("watcher", watcher)     # its watches go when it does
        self.watchers[ref] = (watcher, group)
        if group is _ALL:
            with self._lock:
                return ref, {g: list(all_) for g, (all_, _l) in self._table.items()}
        return ref, self.get_members(group)

    def remove_watcher(self, ref: Any) -> Any:
        return OK if self.watchers.pop(ref, None) is not None else Atom("false")

    def _update(self, group: Any, add: list, remove: list, local: bool) -> None:
        with self._lock:
            all_, loc = self._table.get(group, ((), ()))
            all_ = tuple(add) + tuple(_remove_each(all_, remove))
            if local:
                loc = tuple(add) + tuple(_remove_each(loc, remove))
            if all_:
                self._table[group] = (all_, loc)
            else:
                self._table.pop(group, None)

    def _notify(self, group: Any, what: Atom, pids: list) -> None:
        if not self.watchers or not pids:
            return
        for ref, (watcher, wanted) in list(self.watchers.items()):
            if wanted is _ALL or wanted == group:
                self.node.send(watcher, (ref, what, group, list(pids)))

    def _notify_diff(self, group: Any, before: list, after: list) -> None:
        self._notify(group, LEAVE, _remove_each(before, after))
        self._notify(group, JOIN, _remove_each(after, before))

    # --- any thread ------------------------------------------------------------------
    def get_members(self, group: Any) -> list:
        with self._lock:
            row = self._table.get(freeze(group))
        return list(row[0]) if row else []

    def get_local_members(self, group: Any) -> list:
        with self._lock:
            row = self._table.get(freeze(group))
        return list(row[1]) if row else []

    def which_groups(self) -> list:
        with self._lock:
            return list(self._table)

    def which_local_groups(self) -> list:
        with self._lock:
            return [g for g, (_a, local) in self._table.items() if local]

    def call(self, fn: Callable, *args) -> Any:
        """Run fn(*args) in the scope, on the loop, and return its result."""
        if self.node.runtime.in_loop_thread:
            raise RuntimeError("pg calls wait for the scope: make them from a process, "
                               "not from the runtime loop")
        return self.node.runtime.run(_async(self._run, fn, *args), timeout=10)

    def check_local(self, pid_or_pids: Any) -> list:
        pids = _as_pids(pid_or_pids)
        for pid in pids:
            if not isinstance(pid, Pid) or pid.node != self.node.atom:
                raise BadArg(f"pg takes local pids only ({{nolocal, {pid!r}}}): a process "
                             "joins groups on its own node")
        return pids


class _AllGroups:
    def __repr__(self):
        return "<all groups>"


_ALL = _AllGroups()


async def _async(fn, *args):
    return fn(*args)
