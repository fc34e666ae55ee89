"""Enough of Erlang's `global` protocol for the transitive mesh (connect_all).

Read from OTP 25.2's `lib/kernel/src/global.erl` (kernel 8.5.3, protocol version 8)
and checked against real OTP 25 nodes. When two visible nodes connect, their
`global_name_server`s run this exchange, and at its end each side knows the other's
nodes and connects to the ones it did not know. That is how Erlang's default
`connect_all` makes a full mesh.

The exchange, as this module runs it (names as in global.erl):

1. nodeup: each side casts `{init_connect, {8, MyTag}, node(), {locker,
   no_longer_a_pid, Known, TheLocker}}`. An init_connect that comes before our own
   nodeup is kept (`pre_connect`) and handled at nodeup, as Erlang does.
2. On the other side's init_connect: remember its tag and locker pid, and send
   (a plain message) `{init_connect_ack, node(), HisTag, MyTag}`. Erlang restarts the
   session (`cancel_connect` + a new init_connect) on an ack whose tags do not match
   or on a second init_connect. We deviate: a mismatched ack is ignored, and a second
   init_connect (or his `cancel_connect`) resets the lock steps and adopts his new tag
   while keeping ours. Erlang's rule, copied as is, let one early mismatch (seen while
   our init_connect could still be overtaken by our ack) turn into endless mutual
   restarts; this rule converges with Erlang peers and among clusterkit nodes. Our
   first message goes out only once the connection is up, so the ack cannot overtake
   it any more.
3. Locking: the lock id is `{global, lists:sort([OurLocker, HisLocker])}` (pids sort
   by number, serial, then node). Each side sets the `global` lock on itself and casts
   `{lock_set, OurLocker, true, Known, HisTag}`. The message is symmetric: it is the
   request when we start and the answer when the other side started first. A
   `{lock_set, _, false, ...}` means "busy": we drop our lock and retry after a random
   pause, as Erlang's locker does. Erlang nodes also lock us with
   `gen_server:multi_call(..., {set_lock, Id})` / `{del_lock, Id}`: we keep a real lock
   table and answer true/false honestly.
4. With the lock set: cast `{exchange, node(), Names, [], HisTag}`. When both our lock
   and his exchange are there, cast `{resolved, node(), Resolved, Known, unused,
   NamesExt, HisTag}`. When his resolved is there too, the session is done: tell every
   node we knew before with `{new_nodes, node(), Ops, NamesExt, NewNodes, ExtraInfo}`,
   add his known nodes to ours, connect to each of them and cast `{in_sync, node(),
   true}` to it (Erlang's `sync_others`), and mark him synced.
5. `{new_nodes, ...}` from a peer: add the nodes, connect to the new ones, cast
   `in_sync`. `{in_sync, Node, _}`: Node is synced, any session with it ends. A node
   that is already known when it comes up gets no session (Erlang does the same: the
   node that introduced it sends in_sync instead).

`global:sync()` on an Erlang node returns once every node it is connected to is
synced, through resolved or in_sync, so it returns for clusterkit nodes too.

`connect_all=False` turns all of this off (Erlang's `-connect_all false`); init_connect
messages are kept but never answered, as in Erlang. Hidden connections, and every
connection of a hidden node, take no part (Erlang's global only watches visible nodes).

Left out, on purpose:

- Global name registration. A clusterkit node keeps no global name table: it offers
  `[]` in `exchange`, resolves nothing, and ignores the name operations inside
  `resolved`/`new_nodes`. So `global:register_name` names never live on a clusterkit
  node, and when a clusterkit node is the only bridge between two Erlang partitions,
  names are not copied across it. To keep Erlang's registrar from hanging, the
  `{register, ...}`, `{register_ext, ...}` and `{unregister, ...}` calls it sends to
  every known node are answered (`yes`/`ok`).
- Locking other nodes of our own partition. Erlang's locker also sets the lock on
  every node it knows; ours locks only itself (the peer locks itself, and Erlang peers
  lock their own partition). Lock holders are not monitored; their locks go when their
  node goes down.
- prevent_overlapping_partitions: we never send `lost_connection`, and ignore it.
  We do honour `{remove_connection, Node}` (a peer asks us to drop it).
- Retries of failed connections (`global_connect_retries`), global groups, and the
  high-level trace. A session that stalls (a peer that never answers) is not timed
  out; it ends when that node goes down, as in Erlang.
"""
from __future__ import annotations

import itertools
import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..etf import Atom, Pid, freeze
from .atoms import GEN_CAST, gen_call, gen_cast

if TYPE_CHECKING:
    from .node import LocalNode

log = logging.getLogger("clusterkit")

VSN = 8
GLOBAL = Atom("global")
SERVER = Atom("global_name_server")
INIT_CONNECT, INIT_CONNECT_ACK = Atom("init_connect"), Atom("init_connect_ack")
CANCEL_CONNECT, LOCKER = Atom("cancel_connect"), Atom("locker")
LOCK_SET, EXCHANGE, RESOLVED = Atom("lock_set"), Atom("exchange"), Atom("resolved")
NEW_NODES, IN_SYNC = Atom("new_nodes"), Atom("in_sync")
SET_LOCK, DEL_LOCK = Atom("set_lock"), Atom("del_lock")
REGISTER, REGISTER_EXT, UNREGISTER = Atom("register"), Atom("register_ext"), Atom("unregister")
REMOVE_CONNECTION, LOST_CONNECTION = Atom("remove_connection"), Atom("lost_connection")
UNUSED, NO_LONGER_A_PID = Atom("unused"), Atom("no_longer_a_pid")
YES, OK = Atom("yes"), Atom("ok")


def pid_order(pid: Pid) -> tuple:
    """Erlang's term order for pids: number, serial, node name, creation."""
    return (pid.id, pid.serial, str(pid.node).encode("utf-8"), pid.creation)


@dataclass
class Session:
    """One sync session with a peer (Erlang keeps these in its process dictionary)."""
    peer: Atom
    my_tag: int
    his_tag: Any = None
    his_vsn: int = 0
    his_locker: Pid | None = None
    lock_id: Any = None
    lock_sent: bool = False       # our lock is set and we told him so
    locked: bool = False          # both sides' locks are set
    his_names: Any = None         # his exchange arrived (its name list)
    our_resolved_sent: bool = False
    his_resolved: tuple | None = None   # (HisResolved, HisKnown, NamesExt)
    retry: Any = field(default=None, repr=False)


class Global:
    """The state machine behind our global_name_server. Runs on the node's loop thread."""

    def __init__(self, node: "LocalNode", server: Pid, locker: Pid):
        self.node = node
        self.server = server
        self.locker = locker
        self.known: dict[Atom, int] = {}          # node -> its global protocol version
        self.synced: set[Atom] = set()
        self.sessions: dict[Atom, Session] = {}
        self.pre_connect: dict[Atom, tuple] = {}
        self.locks: dict[Any, tuple[Any, set[Pid]]] = {}   # resource -> (requester, pids)
        self._tags = itertools.count(random.randrange(1 << 20))

    # --- sending ------------------------------------------------------------------
    def _send(self, node: Atom, message: Any) -> None:
        self.node.send((SERVER, node), message, sender=self.server)

    def _cast(self, node: Atom, message: Any) -> None:
        self._send(node, (GEN_CAST, message))

    def known_list(self) -> list:
        return [(n, v) for n, v in self.known.items()]

    # --- connection events ------------------------------------------------------------
    def active(self) -> bool:
        return self.node.connect_all and not self.node.hidden

    def node_up(self, peer: Atom, hidden: bool) -> None:
        if hidden or not self.active():
            return
        conn = self.node.connections.get(peer)
        if conn is None or not conn.up:
            return
        if peer in self.known or peer in self.sessions:
            return
        self._start_session(peer)

    def node_down(self, peer: Atom) -> None:
        self._end_session(peer)
        self.pre_connect.pop(peer, None)
        self.known.pop(peer, None)
        self.synced.discard(peer)
        for resource, (req, pids) in list(self.locks.items()):
            pids = {p for p in pids if p.node != peer}
            if pids:
                self.locks[resource] = (req, pids)
            else:
                del self.locks[resource]

    def _start_session(self, peer: Atom) -> None:
        s = Session(peer, next(self._tags))
        self.sessions[peer] = s
        known = {n: v for n, v in self.known.items()}
        self._cast(peer, (INIT_CONNECT, (VSN, s.my_tag), self.node.atom,
                          (LOCKER, NO_LONGER_A_PID, known, self.locker)))
        log.debug("global: sync with %s started (tag %d)", peer, s.my_tag)
        pre = self.pre_connect.pop(peer, None)
        if pre is not None:
            self._init_connect(peer, *pre)

    def _end_session(self, peer: Atom) -> Session | None:
        s = self.sessions.pop(peer, None)
        if s is not None:
            if s.retry is not None:
                s.retry.cancel()
            if s.lock_id is not None:
                self.del_lock(s.lock_id, self.locker)
        return s

    def _reset(self, s: Session) -> None:
        """Back to 'init_connect done': drop our lock and what the exchange had got."""
        if s.retry is not None:
            s.retry.cancel()
            s.retry = None
        if s.lock_id is not None:
            self.del_lock(s.lock_id, self.locker)
        s.lock_id, s.lock_sent, s.locked = None, False, False
        s.his_names, s.our_resolved_sent, s.his_resolved = None, False, None

    # --- messages to global_name_server -------------------------------------------------
    def handle(self, message: Any) -> None:
        is_cast, cast = gen_cast(message)
        call = None if is_cast else gen_call(message)
        if is_cast:
            self._handle_cast(cast)
        elif call is not None:
            self._handle_call(*call)
        elif _is(message, INIT_CONNECT_ACK, 4):
            _, peer, his_my, his_his = message
            s = self.sessions.get(peer)
            if s is not None and (his_my != s.my_tag or his_his != s.his_tag):
                # Erlang starts over here; we wait for his next init_connect instead
                # (see _init_connect), which keeps two quick peers from restarting forever.
                log.debug("global: stale init_connect_ack from %s: %r", peer, message)
        elif _is(message, CANCEL_CONNECT, 3):
            _, peer, tag = message
            s = self.sessions.get(peer)
            if s is not None and s.my_tag == tag:
                # He dropped his side and starts a new one, whose init_connect we adopt.
                log.debug("global: %s cancelled its side of the sync", peer)
                self._reset(s)
                s.his_tag = s.his_locker = None
        elif _is(message, REMOVE_CONNECTION, 2):
            peer = message[1]
            if peer in self.known or peer in self.sessions:
                log.warning("'global' at node %s disconnected node %s, as it asked, "
                            "to prevent overlapping partitions", self.node.atom, peer)
                conn = self.node.connections.get(peer)
                if conn is not None:
                    conn.disconnect("remove_connection")
        else:
            # lost_connection (overlapping partitions) and anything else: not implemented
            log.debug("global_name_server ignored %r", message)

    def _handle_cast(self, msg: Any) -> None:
        if _is(msg, INIT_CONNECT, 4):
            _, vsn, peer, init_msg = msg
            if type(vsn) is not tuple or len(vsn) < 2 or not isinstance(vsn[0], int):
                log.info("Illegal global protocol version %r Node: %s", vsn, peer)
                return
            self._init_connect(peer, vsn, init_msg)
        elif _is(msg, LOCK_SET, 5):
            _, pid, is_set, _his_known, tag = msg
            if isinstance(pid, Pid):
                self._lock_set(pid, is_set, tag)
        elif _is(msg, EXCHANGE, 5):
            _, peer, names, _names_ext, tag = msg
            s = self._session(peer, tag)
            if s is not None:
                s.his_names = names
                self._maybe_resolve(s)
        elif _is(msg, RESOLVED, 7):
            _, peer, his_resolved, his_known, _unused, names_ext, tag = msg
            s = self._session(peer, tag)
            if s is not None:
                s.his_resolved = (his_resolved, his_known, names_ext)
                self._maybe_finish(s)
        elif _is(msg, NEW_NODES, 6):
            _, peer, _ops, _names_ext, nodes, _extra = msg
            added = self._add_to_known(nodes)
            self._sync_others(added)
        elif _is(msg, IN_SYNC, 3):
            peer = msg[1]
            self.synced.add(peer)
            self._end_session(peer)
            log.debug("global: %s is in sync with us", peer)
        else:
            log.debug("global_name_server ignored cast %r", msg)

    def _handle_call(self, from_: tuple, request: Any) -> None:
        caller = from_[0]
        if _is(request, SET_LOCK, 2) and _is_lock_id(request[1]) and isinstance(caller, Pid):
            reply = self.set_lock(request[1], caller)
        elif _is(request, DEL_LOCK, 2) and _is_lock_id(request[1]) and isinstance(caller, Pid):
            self.del_lock(request[1], caller)
            reply = True
        elif _is(request, REGISTER, 4) or _is(request, REGISTER_EXT, 5):
            reply = YES            # no name table here: see the module docstring
        elif _is(request, UNREGISTER, 2):
            reply = OK
        elif request == Atom("get_known"):
            reply = list(self.known)
        elif request == Atom("get_synced"):
            reply = sorted(self.synced)
        elif request == Atom("get_protocol_version"):
            reply = VSN
        else:
            log.debug("global_name_server ignored call %r", request)
            return
        self.node.reply(from_, reply)

    # --- the steps of a session -----------------------------------------------------------
    def _session(self, peer: Any, tag: Any) -> Session | None:
        s = self.sessions.get(peer)
        if s is None or s.my_tag != tag:
            log.debug("global: stale message from %s (tag %r)", peer, tag)
            return None
        return s

    def _init_connect(self, peer: Atom, vsn: tuple, init_msg: Any) -> None:
        s = self.sessions.get(peer)
        if s is None:
            self.pre_connect[peer] = (vsn, init_msg)
            return
        his_vsn, his_tag = vsn[0], vsn[1]
        if s.his_tag is not None:
            # A new session from his side while ours runs (he cancelled or restarted):
            # adopt it and keep our tag, which he already has.
            log.debug("global: %s started its side of the sync again", peer)
            self._reset(s)
        if not (_is(init_msg, LOCKER, 4) and isinstance(init_msg[3], Pid)):
            log.debug("global: init_connect from %s without a locker: %r", peer, init_msg)
            return
        s.his_tag, s.his_vsn, s.his_locker = his_tag, min(his_vsn, VSN), init_msg[3]
        self._send(peer, (INIT_CONNECT_ACK, self.node.atom, his_tag, s.my_tag))
        self._try_lock(s)

    def _try_lock(self, s: Session) -> None:
        s.retry = None
        if self.sessions.get(s.peer) is not s or s.lock_sent or s.locked:
            return
        lock_id = (GLOBAL, sorted([self.locker, s.his_locker], key=pid_order))
        if self.set_lock(lock_id, self.locker):
            s.lock_id, s.lock_sent = lock_id, True
            self._cast(s.peer, (LOCK_SET, self.locker, True, list(self.known), s.his_tag))
        else:
            self._retry_later(s)

    def _retry_later(self, s: Session) -> None:
        if s.retry is None:
            s.retry = self.node.loop.call_later(random.uniform(0.2, 1.0), self._try_lock, s)

    def _lock_set(self, pid: Pid, is_set: Any, tag: Any) -> None:
        s = self._session(pid.node, tag)
        if s is None or s.locked:
            return
        if is_set is True:
            if not s.lock_sent:
                # He asked first: lock ourselves and answer.
                lock_id = (GLOBAL, sorted([self.locker, pid], key=pid_order))
                ok = self.set_lock(lock_id, self.locker)
                self._cast(s.peer, (LOCK_SET, self.locker, ok, list(self.known), s.his_tag))
                if not ok:
                    self._retry_later(s)
                    return
                s.lock_id, s.lock_sent = lock_id, True
            s.locked = True
            if s.retry is not None:
                s.retry.cancel()
                s.retry = None
            self._cast(s.peer, (EXCHANGE, self.node.atom, [], [], s.his_tag))
            self._maybe_resolve(s)
        elif s.lock_sent:
            # He is busy: let go and try again later.
            self.del_lock(s.lock_id, self.locker)
            s.lock_id, s.lock_sent = None, False
            self._retry_later(s)

    def _maybe_resolve(self, s: Session) -> None:
        if not s.locked or s.his_names is None or s.our_resolved_sent:
            return
        # We hold no names, so there is nothing to resolve: Ops and Resolved are [].
        s.our_resolved_sent = True
        self._cast(s.peer, (RESOLVED, self.node.atom, [], self.known_list(), UNUSED, [],
                            s.his_tag))
        self._maybe_finish(s)

    def _maybe_finish(self, s: Session) -> None:
        if not s.our_resolved_sent or s.his_resolved is None:
            return
        his_resolved, his_known, names_ext = s.his_resolved
        new_nodes = [(s.peer, s.his_vsn)] + [_node_vsn(x) for x in his_known or []]
        new_nodes = [x for x in new_nodes if x is not None]
        extra = [(Atom("vsn"), s.his_vsn), (Atom("lock"), s.lock_id)]
        his_nodes = [n for n, _ in new_nodes[1:]]
        # The nodes we knew hear about his side (Erlang sends this from its locker).
        for n, v in list(self.known.items()):
            if n != s.peer:
                nodes = new_nodes if v >= 7 else [n2 for n2, _ in new_nodes]
                self._cast(n, (NEW_NODES, self.node.atom, his_resolved, names_ext,
                               nodes, extra))
        self._end_session(s.peer)
        for n in his_nodes:
            if n in self.sessions:
                self._end_session(n)
        self._add_to_known(new_nodes)
        self.synced.add(s.peer)
        self._sync_others(his_nodes)
        log.debug("global: in sync with %s; it knows %s", s.peer, his_nodes)

    def _add_to_known(self, nodes: Any) -> list[Atom]:
        added = []
        for item in nodes or []:
            nv = _node_vsn(item)
            if nv is None or nv[0] == self.node.atom:
                continue
            n, v = nv
            if n not in self.known:
                self.known[n] = v
                added.append(n)
            elif self.known[n] < 0 <= v:
                self.known[n] = v
        return added

    def _sync_others(self, nodes: list[Atom]) -> None:
        for n in nodes:
            if n != self.node.atom:
                self.node.loop.create_task(self._sync_other(n))

    async def _sync_other(self, peer: Atom) -> None:
        try:
            ok = await self.node.connect(peer)
        except Exception as exc:       # an invalid name from a peer must not kill the loop
            ok = False
            log.debug("global: cannot connect to %s: %s", peer, exc)
        if ok:
            self._cast(peer, (IN_SYNC, self.node.atom, True))
        else:
            log.warning("'global' at %s failed to connect to %s", self.node.atom, peer)
            self.node_down(peer)

    # --- the lock table -----------------------------------------------------------------
    def set_lock(self, lock_id: tuple, pid: Pid) -> bool:
        resource, requester = freeze(lock_id[0]), lock_id[1]
        entry = self.locks.get(resource)
        if entry is None:
            self.locks[resource] = (requester, {pid})
            return True
        if entry[0] == requester:
            entry[1].add(pid)
            return True
        return False

    def del_lock(self, lock_id: tuple, pid: Pid) -> None:
        resource, requester = freeze(lock_id[0]), lock_id[1]
        entry = self.locks.get(resource)
        if entry is not None and entry[0] == requester:
            entry[1].discard(pid)
            if not entry[1]:
                del self.locks[resource]


def _is(term: Any, tag: Atom, size: int) -> bool:
    return type(term) is tuple and len(term) == size and term[0] == tag


def _is_lock_id(term: Any) -> bool:
    return type(term) is tuple and len(term) == 2


def _node_vsn(item: Any) -> tuple[Atom, int] | None:
    if isinstance(item, Atom):
        return item, 0
    if (type(item) is tuple and len(item) == 2 and isinstance(item[0], Atom)
            and isinstance(item[1], int) and not isinstance(item[1], bool)):
        return item[0], item[1]
    return None
