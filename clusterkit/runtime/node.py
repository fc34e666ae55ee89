"""The local node: its name, listener, connections, processes, monitors and links.

All state here is owned by the runtime loop thread. Methods that user threads call
(`send`, `monitor`, `call`, ...) either touch thread-safe parts only (mailboxes, the
connection's channel, the process table under `_lock`) or hand the work to the loop.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import threading
from typing import Any, Callable

from .. import epmd
from ..dist import control
from ..dist import handshake as hs
from ..dist.framing import MAX_FRAME
from ..etf import Atom, ImproperList, Pid, Reference, atom_text, encode
from ..names import InvalidNodeName, NodeName
from . import current, services
from .atoms import (DOWN, EXIT, GEN_CALL, KILL, KILLED, NOCONNECTION, NODEDOWN, NOPROC,
                    NORMAL, PROCESS)
from .channel import DEFAULT_BUSY_LIMIT
from .connection import Connection
from .errors import BadArg, CallError, CallTimeout, NotAlive, ProcessExit, ReceiveTimeout
from .loop import Runtime
from .peers import Peers
from .process import Process
from .waiting import WaitingSends

log = logging.getLogger("clusterkit")

NodeHook = Callable[..., None]


def describe(dest: Any) -> str:
    if isinstance(dest, tuple) and len(dest) == 2:
        return f"{dest[0]} on {dest[1]}"
    return str(dest)


class _ThreadExit:
    """Kept in a thread's local storage: when the thread ends, CPython drops it, and the
    thread's process ends with reason normal (monitors get DOWN, links get signals)."""

    __slots__ = ("node", "proc")

    def __init__(self, node: "LocalNode", proc: Process):
        self.node, self.proc = node, proc

    def __del__(self):
        self.node.exit_process(self.proc, NORMAL)


class LocalNode(Peers):
    def __init__(self, name: NodeName, cookie: str, *, hidden: bool = False,
                 net_ticktime: float = 60, epmd_port: int = 4369,
                 port_range: tuple[int, int] = (0, 0), listen_address: str = "0.0.0.0",
                 connect_all: bool = True, setup_time: float = 7.0,
                 dist_buf_busy_limit: int = DEFAULT_BUSY_LIMIT,
                 max_message_size: int = MAX_FRAME, epmd_host: str = "127.0.0.1",
                 resolve_host=None):
        self.name = name
        # The EPMD to register with: the node's own loopback address, so that one machine
        # holds many `app@127.0.0.N` nodes (clusterkit's EPMD keeps a registry per address).
        self.epmd_host = epmd_host
        # host -> address, blocking (a DNS lookup); None: the system resolver at dial time.
        self.resolve_host = resolve_host
        self.atom = name.atom
        self.cookie = cookie
        self.cookies: dict[Atom, str] = {}
        self.hidden = hidden
        self.net_ticktime = net_ticktime
        self.epmd_port = epmd_port
        self.port_range = port_range
        self.listen_address = listen_address
        self.connect_all = connect_all
        self.setup_time = setup_time
        self.dist_buf_busy_limit = dist_buf_busy_limit
        self.max_message_size = max_message_size
        self.creation = 0
        self.port = 0
        self.runtime = Runtime(f"clusterkit-{name.alive}")
        self.loop = self.runtime.loop
        # connections (loop-owned): up ones, and attempts in progress
        self.connections: dict[Atom, Connection] = {}
        self._pending: dict[Atom, Any] = {}
        self._waiters: dict[Atom, asyncio.Future] = {}
        # frames sent to nodes still being connected (any thread; leaf lock inside)
        self._waiting = WaitingSends(dist_buf_busy_limit)
        # processes: the table is read from any thread, changed under _lock
        self.processes: dict[tuple[int, int], Process] = {}
        self.registered: dict[Atom, Process] = {}
        self._lock = threading.Lock()
        self._thread_procs = threading.local()
        self._ids = itertools.count(1)
        self._ref_ids = itertools.count(1)
        # node monitoring (loop-owned)
        self.node_monitors: dict[Pid, dict] = {}
        self.single_node_monitors: dict[Atom, set[Pid]] = {}
        self._node_hooks: list[tuple[NodeHook | None, NodeHook | None]] = []
        # services, made by services.start(): global's state and rex's worker pool
        self.global_state = None
        self.rex_pool = None
        self._listener: socket.socket | None = None
        self._registration = None
        self.alive = False

    # --- lifecycle ----------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        try:
            self.runtime.run(self._start(), timeout)
        except BaseException:
            self.runtime.run(self._stop(), 10)
            self.runtime.stop()
            raise
        self.alive = True

    async def _start(self) -> None:
        lo, hi = self.port_range
        ports = [0] if lo == 0 else range(lo, (hi or lo) + 1)
        last_error = None
        for port in ports:
            try:
                self._listener = socket.create_server((self.listen_address, port),
                                                      backlog=128)
                break
            except OSError as exc:
                last_error = exc
        if self._listener is None:
            raise OSError(f"no free distribution port in {lo}..{hi}: {last_error}")
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        await self.loop.run_in_executor(None, epmd.ensure_running, self.epmd_port)
        self._registration = await epmd.register(
            self.name.alive, self.port, hidden=self.hidden, epmd_port=self.epmd_port,
            host=self.epmd_host)
        self.creation = self._registration.creation
        self.loop.add_reader(self._listener, self._accept)
        services.start(self)

    def _accept(self) -> None:
        for _ in range(64):                 # a burst of connects, then let others run
            try:
                sock, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accepting a distribution connection failed: %s", exc)
                return
            Connection(self, hs.Role.ACCEPTOR).attach(sock)

    def stop(self) -> None:
        if not self.alive:
            return
        self.alive = False
        try:
            self.runtime.run(self._stop(), 10)
        finally:
            self.runtime.stop()
            self._waiting.drop_all()    # wakes any sender that queued after _stop ran
            if current.default() is self:
                current.set_default(None)

    async def _stop(self) -> None:
        # Whoever waits for a connection gets False; servers get Elixir's :shutdown.
        for peer in list(self._waiters):
            self._resolve(peer, False)
        self._waiting.drop_all()
        for proc in list(self.processes.values()):
            if proc.on_node_stop is not None and proc.alive:
                proc.on_node_stop()
        for conn in list(self.connections.values()) + list(self._pending.values()):
            conn.disconnect("shutdown")
        if self._listener is not None:
            self.loop.remove_reader(self._listener)
            self._listener.close()
        if self._registration is not None:
            await self._registration.close()
        await asyncio.sleep(0)
        others = [t for t in asyncio.all_tasks(self.loop) if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        if self.rex_pool is not None:
            self.rex_pool.shutdown(wait=False, cancel_futures=True)

    @contextlib.contextmanager
    def as_current(self):
        """Within this block the calling thread means this node (tests with two nodes)."""
        before = current.bound()
        current.bind(self)
        try:
            yield self
        finally:
            current.bind(before)

    # --- hooks for services -----------------------------------------------------------
    def add_node_hook(self, on_up: NodeHook | None = None,
                      on_down: NodeHook | None = None) -> None:
        """Run on_up(peer, hidden) once a connection is up and on_down(peer, reason) once it
        is gone, on the loop thread, after the node's own bookkeeping."""
        self._node_hooks.append((on_up, on_down))

    def run_node_hooks(self, up: bool, peer: Atom, detail: Any) -> None:
        for on_up, on_down in list(self._node_hooks):
            hook = on_up if up else on_down
            if hook is None:
                continue
            try:
                hook(peer, detail)
            except Exception:
                log.exception("a node%s hook failed for %s", "up" if up else "down", peer)

    # --- identifiers ----------------------------------------------------------------
    def new_pid(self) -> Pid:
        n = next(self._ids)
        # Keep within what every OTP release accepts: 15 bits of id, 13 of serial.
        return Pid(self.atom, n & 0x7FFF, (n >> 15) & 0x1FFF, self.creation)

    def make_ref(self) -> Reference:
        n = next(self._ref_ids)
        return Reference(self.atom, self.creation, (n & 0x3FFFF, (n >> 18) & 0xFFFFFFFF, 0))

    # --- processes --------------------------------------------------------------------
    def spawn_process(self, handler: Callable | None = None, label: str = "",
                      **options) -> Process:
        """A new process in the table. See Process for the kinds and options."""
        proc = Process(self.new_pid(), handler, label, **options)
        with self._lock:
            self.processes[(proc.pid.id, proc.pid.serial)] = proc
        return proc

    def current_process(self) -> Process:
        """The process of the calling thread, made on first use (a shell process).
        It ends when the thread ends."""
        proc = getattr(self._thread_procs, "proc", None)
        if proc is None or not proc.alive or proc.pid.node != self.atom:
            proc = self.spawn_process(label=threading.current_thread().name)
            self._thread_procs.proc = proc
            self._thread_procs.exit = _ThreadExit(self, proc)
        return proc

    def bind_thread(self, proc: Process) -> None:
        """The calling thread runs `proc` (a GenServer or spawned function)."""
        self._thread_procs.proc = proc
        self._thread_procs.exit = None
        current.bind(self)

    def spawn(self, fn: Callable, args: tuple = (), link: bool = False) -> Pid:
        """Erlang's spawn: run fn(*args) in a new process on a thread of its own. It ends
        when fn returns (normal) or raises (the exception is its exit reason)."""
        proc = self.spawn_process(label=getattr(fn, "__name__", "spawn"), trap_exit=False)
        if link:
            self._link_local(self.current_process(), proc)

        def run():
            self.bind_thread(proc)
            reason: Any = NORMAL
            try:
                fn(*args)
            except ProcessExit as exc:
                reason = exc.reason
            except Exception as exc:
                reason = (Atom(type(exc).__name__), str(exc))
                log.error("Error in process %r on node %s with exit value:\n%r",
                          proc.pid, atom_text(self.atom), exc)
            finally:
                self.exit_process(proc, reason)
        threading.Thread(target=run, name=f"process {proc.pid!r}", daemon=True).start()
        return proc.pid

    def link(self, pid: Pid) -> None:
        """Link the calling process and `pid` (here or on another node)."""
        me = self.current_process()
        if pid.node == self.atom:
            other = self.local_process(pid)
            if other is None or not other.alive:
                self.call_on_loop(self.exit_signal, me, pid, NOPROC)
                return
            self._link_local(me, other)
            return
        me.links.add(pid)
        self.send_remote(pid.node, control.link_frame(me.pid, pid))

    def _link_local(self, a: Process, b: Process) -> None:
        with self._lock:
            a.links.add(b.pid)
            b.links.add(a.pid)

    def local_process(self, target: Any) -> Process | None:
        if isinstance(target, Pid):
            if target.node != self.atom or target.creation != self.creation:
                return None
            return self.processes.get((target.id, target.serial))
        return self.registered.get(Atom(target))

    def call_on_loop(self, fn: Callable, *args) -> None:
        """Run fn(*args) on the loop: now when already there, else as soon as it can."""
        if self.runtime.in_loop_thread:
            fn(*args)
        else:
            self.runtime.call_soon(fn, *args)

    # --- registration ---------------------------------------------------------------
    def register(self, name: str, pid: Pid) -> None:
        name = Atom(name)
        proc = self.local_process(pid)
        with self._lock:
            if proc is None or not proc.alive:
                raise BadArg(f"cannot register {name}: {pid!r} is not a live local process")
            if name in self.registered:
                raise BadArg(f"the name {name} is already registered to "
                             f"{self.registered[name].pid!r}")
            if proc.registered_name is not None:
                raise BadArg(f"{pid!r} is already registered as {proc.registered_name}")
            self.registered[name] = proc
            proc.registered_name = name

    def unregister(self, name: str) -> None:
        with self._lock:
            proc = self.registered.pop(Atom(name), None)
            if proc is None:
                raise BadArg(f"no process is registered as {name}")
            proc.registered_name = None

    def whereis(self, name: str) -> Pid | None:
        proc = self.registered.get(Atom(name))
        return proc.pid if proc else None

    def set_cookie(self, cookie: str, node: Atom | None = None) -> None:
        """Set this node's cookie, or the one for `node`, on the loop that reads them."""
        def work():
            if node is None:
                self.cookie = cookie
            else:
                self.cookies[Atom(node)] = cookie
        if self.runtime.in_loop_thread:
            work()
        else:
            self.runtime.run(_call(work), timeout=10)

    # --- sending ----------------------------------------------------------------------
    def deliver_local(self, proc: Process, message: Any) -> None:
        if proc.handler is not None:
            self.call_on_loop(proc.deliver, message)
        else:
            proc.deliver(message)

    def send(self, dest: Any, message: Any, sender: Pid | None = None) -> Any:
        """Erlang's `!`: to a pid, a registered name, or a (name, node) pair."""
        if isinstance(dest, Pid):
            if dest.node == self.atom:
                proc = self.local_process(dest)
                if proc is not None:
                    self.deliver_local(proc, message)
                return message
            self.send_remote(dest.node, control.send_frame(dest, message))
            return message
        if isinstance(dest, tuple) and len(dest) == 2:
            name, node = Atom(dest[0]), Atom(dest[1])
            sender = sender or self.current_process().pid
            if node == self.atom:
                proc = self.registered_or_log(name, sender)
                if proc is not None:
                    self.deliver_local(proc, message)
                return message
            self.send_remote(node, control.reg_send_frame(sender, name, message))
            return message
        if isinstance(dest, str):
            proc = self.registered.get(Atom(dest))
            if proc is None:
                raise BadArg(f"no process is registered as {dest} on {self.atom} "
                             "(Erlang raises badarg here)")
            self.deliver_local(proc, message)
            return message
        raise BadArg(f"cannot send to {dest!r}: give a pid, a registered name or "
                     "a (name, node) tuple")

    def registered_or_log(self, name: Atom, sender: Any) -> Process | None:
        """The process registered as `name`; if none, say so: a message is never lost
        without a word (Erlang drops it silently)."""
        proc = self.registered.get(name)
        if proc is None:
            log.warning("message from %s to %s dropped: no process is registered as %s "
                        "on %s", sender, name, name, self.atom)
        return proc

    def send_remote(self, node: Atom, body: bytes) -> None:
        """Send an encoded frame (encoded by the caller, so errors surface there).

        From a user thread this blocks while the connection's outbox is past its busy
        limit; on the loop it never blocks. To a node not connected yet, the frame waits
        for the connection (see `waiting`), and the sender goes on, as in Erlang."""
        in_loop = self.runtime.in_loop_thread
        conn = self.connections.get(node)
        if conn is not None and conn.up and node not in self._waiting:
            self._write(conn, body, in_loop)        # the hot path: up, nothing waiting
            return
        while True:
            if not in_loop and not self.alive:
                raise NotAlive(f"{self.atom} has stopped; nothing can be sent from it")
            outcome, resolved = self._waiting.add(node, body, self._is_up)
            if outcome == "direct":
                conn = self.connections.get(node)
                if conn is None:            # it went down just now: queue behind a connect
                    continue
                self._write(conn, body, in_loop)
            elif outcome == "first":
                self.call_on_loop(self._start_waiting_connect, node)
            elif outcome == "full":
                if in_loop:                 # the loop never waits
                    log.warning("message to %s dropped: more than %d bytes already wait "
                                "for that connection", atom_text(node), self._waiting.limit)
                else:
                    resolved.wait(3 * self.setup_time)
                    continue
            return

    @staticmethod
    def _write(conn: Connection, body: bytes, in_loop: bool) -> None:
        if in_loop:
            conn.send_frame(body)
        else:
            conn.send_frame_threadsafe(body)

    def _is_up(self, node: Atom) -> bool:
        conn = self.connections.get(node)
        return conn is not None and conn.up

    def _start_waiting_connect(self, node: Atom) -> None:
        if not self.alive:              # stopping: nothing more connects
            self._waiting.drop(node)
            return
        self.loop.create_task(self._connect_then_flush(node))

    async def _connect_then_flush(self, node: Atom) -> None:
        try:
            ok = await self.connect(node)
        except InvalidNodeName as exc:
            ok = False
            reason = str(exc)
        else:
            reason = "cannot connect to that node"
        conn = self.connections.get(node)
        if ok and conn is not None and conn.up:
            # Written outside the lock, batch by batch: while frames remain, later sends
            # queue behind them, so the order is kept.
            while frames := self._waiting.take(node):
                for frame in frames:
                    conn.send_frame(frame)
            return
        dropped = self._waiting.drop(node)
        if dropped:
            log.warning("%d message%s to %s dropped: %s", dropped, "" if dropped == 1 else "s",
                        atom_text(node), reason)

    # --- monitors -----------------------------------------------------------------------
    def monitor(self, watcher: Pid, target: Any) -> Reference:
        """Watch a process; the watcher gets ('DOWN', ref, 'process', obj, reason).
        From a user thread, a remote monitor is in place when this returns; from the
        loop it is set up in the background (its DOWN comes later either way)."""
        ref = self.make_ref()
        node, obj, proc_id = self._split_target(target)
        if node == self.atom:
            proc = self.local_process(proc_id)
            # The alive check and the insert are one step under the lock, which the
            # process's exit also takes: a monitor set while it exits still gets DOWN.
            with self._lock:
                watching = proc is not None and proc.alive
                if watching:
                    proc.monitored_by[ref] = (watcher, obj)
            if not watching:
                self.deliver_pid(watcher, (DOWN, ref, PROCESS, obj, NOPROC))
            return ref
        work = self._monitor_remote(watcher, node, obj, proc_id, ref)
        if self.runtime.in_loop_thread:
            self.loop.create_task(work)
            return ref
        try:
            self.runtime.run(work, timeout=3 * self.setup_time)
        except TimeoutError:
            self.deliver_pid(watcher, (DOWN, ref, PROCESS, obj, NOCONNECTION))
        return ref

    async def _monitor_remote(self, watcher, node, obj, proc_id, ref) -> None:
        try:
            ok = await self.connect(node)
        except InvalidNodeName:
            ok = False
        conn = self.connections.get(node)
        if not ok or conn is None:
            self.deliver_pid(watcher, (DOWN, ref, PROCESS, obj, NOCONNECTION))
            return
        conn.out_monitors[ref] = (watcher, obj)
        conn.send_frame(control.monitor_frame(watcher, proc_id, ref))

    def demonitor(self, ref: Reference, watcher: Pid | None = None,
                  wait: bool = False) -> None:
        """Stop watching. With wait=True, return only once no DOWN can come any more."""
        def work():
            for proc in list(self.processes.values()):
                with self._lock:
                    found = proc.monitored_by.pop(ref, None) is not None
                if found:
                    return
            for conn in self.connections.values():
                entry = conn.out_monitors.pop(ref, None)
                if entry is not None:
                    w, obj = entry
                    target = obj[0] if isinstance(obj, tuple) else obj
                    conn.send_frame(control.demonitor_frame(w, target, ref))
                    return
        if self.runtime.in_loop_thread:
            work()
        elif wait:
            self.runtime.run(_call(work))
        else:
            self.runtime.call_soon(work)

    def _split_target(self, target):
        """(node, the object a DOWN message names, what MONITOR_P names)."""
        if isinstance(target, Pid):
            return target.node, target, target
        if isinstance(target, tuple) and len(target) == 2:
            name, node = Atom(target[0]), Atom(target[1])
            return node, (name, node), name
        if isinstance(target, str):
            name = Atom(target)
            return self.atom, (name, self.atom), name
        raise BadArg(f"cannot monitor {target!r}")

    def deliver_pid(self, pid: Pid, message: Any) -> None:
        proc = self.local_process(pid)
        if proc is not None:
            self.deliver_local(proc, message)

    # --- calls (gen:call) ----------------------------------------------------------------
    def call(self, dest: Any, request: Any, timeout: float | None = 5.0,
             label: str = "call") -> Any:
        me = self.current_process()
        ref = self.monitor(me.pid, dest)
        node, _obj, proc_id = self._split_target(dest)
        if node != self.atom or self.local_process(proc_id) is not None:
            self.send(dest, (GEN_CALL, (me.pid, ref), request), sender=me.pid)
        # else: nothing local by that name; the monitor's DOWN (noproc) is the answer

        def is_answer(m):
            return type(m) is tuple and (
                (len(m) == 2 and m[0] == ref) or
                (len(m) == 5 and m[0] == DOWN and m[1] == ref))
        ok, message = me.mailbox.take(timeout, is_answer)
        if not ok:
            me.mailbox.abandon(ref)
        # Like gen:call's demonitor(Mref, [flush]): after this, neither a DOWN nor a
        # late reply for this call is left in (or can still reach) the mailbox.
        self.demonitor(ref, wait=True)
        while me.mailbox.take(0, is_answer)[0]:
            pass
        if not ok:
            raise CallTimeout(f"{label} to {describe(dest)} timed out after {timeout} s",
                              Atom("timeout"))
        if len(message) == 5:
            reason = message[4]
            if reason == NOPROC:
                text = f"no process: nothing is registered as {describe(dest)}" \
                    if not isinstance(dest, Pid) else f"no process {dest!r}"
            elif reason == NOCONNECTION:
                node = dest.node if isinstance(dest, Pid) else (
                    dest[1] if isinstance(dest, tuple) else self.atom)
                text = f"no connection to {node}"
            else:
                text = f"{describe(dest)} exited: {reason!r}"
            raise CallError(f"{label} to {describe(dest)} failed: {text}", reason)
        return message[1]

    def reply(self, from_: Any, reply: Any) -> None:
        """gen:reply: send {Tag, Reply} to the caller, echoing its tag exactly."""
        pid, tag = from_
        self.send(pid, (tag, reply))

    # --- node monitoring --------------------------------------------------------------
    def monitor_nodes(self, pid: Pid, flag: bool, options: dict | None = None) -> None:
        if flag:
            self.node_monitors[pid] = dict(options or {})
        else:
            self.node_monitors.pop(pid, None)

    def monitor_node(self, pid: Pid, node: Atom, flag: bool) -> None:
        """erlang:monitor_node/2 (loop thread)."""
        watchers = self.single_node_monitors.setdefault(node, set())
        if flag:
            watchers.add(pid)
        else:
            watchers.discard(pid)

    def notify_nodes(self, what: Atom, conn: Connection, reason: Any = None) -> None:
        hidden = conn.hidden
        for pid, opts in list(self.node_monitors.items()):
            kind = opts.get("node_type", "visible")
            if (kind == "visible" and hidden) or (kind == "hidden" and not hidden):
                continue
            if opts.get("node_type") or opts.get("nodedown_reason"):
                info = {}
                if opts.get("node_type"):
                    info[Atom("node_type")] = Atom("hidden" if hidden else "visible")
                if opts.get("nodedown_reason") and what == NODEDOWN:
                    info[Atom("nodedown_reason")] = Atom(reason or "connection_closed")
                message = (what, conn.peer, info)
            else:
                message = (what, conn.peer)
            proc = self.local_process(pid)
            if proc is None:
                self.node_monitors.pop(pid, None)
            else:
                self.deliver_local(proc, message)

    def nodes(self, kind: str = "visible") -> list[Atom]:
        conns = [c for c in list(self.connections.values()) if c.up]
        if kind == "visible":
            return [c.peer for c in conns if not c.hidden]
        if kind == "hidden":
            return [c.peer for c in conns if c.hidden]
        if kind in ("connected", "known"):
            return [c.peer for c in conns]
        if kind == "this":
            return [self.atom]
        raise BadArg(f"unknown node list kind {kind!r}: use visible, hidden, connected or this")

    # --- exit signals and process exit (loop thread) ----------------------------------------
    def exit_signal(self, proc: Process, sender: Pid, reason: Any,
                    exit2: bool = False) -> None:
        """An exit signal: from a broken link, or sent on purpose (exit/2) when exit2."""
        if proc.on_exit_signal is not None:
            proc.on_exit_signal(sender, reason, exit2)
        elif proc.trap_exit:
            # Shell processes trap exits: a cell's process is never killed from outside.
            self.deliver_local(proc, (EXIT, sender, reason))
        elif reason != NORMAL or (exit2 and reason == KILL):
            # A spawned process that does not trap exits ends, as in Erlang. Its thread
            # learns it at its next receive (ProcessExit).
            final = KILLED if exit2 and reason == KILL else reason
            proc.mailbox.close(final)
            self._exit_now(proc, final)

    def exit_process(self, proc: Process, reason: Any = NORMAL) -> None:
        """A local process ended: tell its monitors and links (on the loop, soon)."""
        self.runtime.call_soon(self._exit_now, proc, reason)

    def _exit_now(self, proc: Process, reason: Any) -> None:
        with self._lock:
            if not proc.alive:
                return
            proc.alive = False
            self.processes.pop((proc.pid.id, proc.pid.serial), None)
            if proc.registered_name is not None:
                self.registered.pop(proc.registered_name, None)
            monitors, proc.monitored_by = dict(proc.monitored_by), {}
            links, proc.links = set(proc.links), set()
        self.node_monitors.pop(proc.pid, None)
        for ref, (watcher, obj) in monitors.items():
            if watcher.node == self.atom:
                self.deliver_pid(watcher, (DOWN, ref, PROCESS, obj, reason))
            else:
                conn = self.connections.get(watcher.node)
                if conn is not None:
                    conn.send_frame(control.monitor_exit_frame(
                        obj, watcher, ref, reason, conn.payload_exits))
        for linked in links:
            if linked.node == self.atom:
                other = self.local_process(linked)
                if other is not None:
                    other.links.discard(proc.pid)
                    self.exit_signal(other, proc.pid, reason)
            else:
                conn = self.connections.get(linked.node)
                if conn is not None:
                    conn.send_frame(control.exit_frame(proc.pid, linked, reason,
                                                       conn.payload_exits))

    # --- helpers for the API -------------------------------------------------------------
    @staticmethod
    def etf_check(term: Any) -> None:
        """Raise ETFError now if `term` cannot travel, instead of later on the loop."""
        encode(term)

    def receive(self, timeout: float | None = None, match=None, default=ReceiveTimeout):
        me = self.current_process()
        ok, message = me.mailbox.take(timeout, match)
        if ok:
            return message
        if default is ReceiveTimeout:
            raise ReceiveTimeout(f"no message arrived within {timeout} s")
        return default


async def _call(fn):
    return fn()


__all__ = ["LocalNode", "BadArg", "CallError", "CallTimeout", "ImproperList", "encode"]
