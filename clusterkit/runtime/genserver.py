"""GenServer: Elixir's behaviour, with Python callbacks and Elixir's return tuples.

Each server is a process with a thread of its own, so a callback may block, call other
servers, or call other nodes. The wire format is gen_server's, so an Erlang or Elixir
node can `GenServer.call({Name, node}, request)` a Python server and the other way round.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from ..etf import Atom, Pid
from . import current
from .atoms import (ERROR, EXIT, GEN_CAST, KILL, KILLED, NORMAL, OK, SHUTDOWN, TIMEOUT,
                    gen_call)
from .process import Process

log = logging.getLogger("clusterkit")


@dataclass(frozen=True)
class _ExitSignal:
    sender: Pid
    reason: Any
    exit2: bool = False     # sent with exit/2; only then is `kill` untrappable


def _as_reason(reason: Any) -> Any:
    """Elixir's tuples say ("stop", "normal", s): the reason is the atom, not a string."""
    return Atom(reason) if type(reason) is str else reason


@dataclass(frozen=True)
class _Stop:
    reason: Any
    from_: Any = None


class BadReturn(RuntimeError):
    pass


def _node():
    return current.node()


class GenServer:
    """Subclass it and override the callbacks you need, as with `use GenServer`."""

    trap_exit = False

    # --- callbacks (Elixir's defaults) ------------------------------------------------
    def init(self, arg):
        return ("ok", arg)

    def handle_call(self, request, from_, state):
        raise RuntimeError(f"{type(self).__name__} received a call {request!r} but "
                           "defines no handle_call")

    def handle_cast(self, request, state):
        raise RuntimeError(f"{type(self).__name__} received a cast {request!r} but "
                           "defines no handle_cast")

    def handle_info(self, message, state):
        log.warning("%s received an unexpected message in handle_info: %r",
                    type(self).__name__, message)
        return ("noreply", state)

    def terminate(self, reason, state):
        return None

    # --- client API ---------------------------------------------------------------------
    @staticmethod
    def start(module, init_arg=None, name: str | None = None, timeout: float = 5.0):
        """Start a server; ("ok", pid) or ("error", reason), like GenServer.start/3."""
        return _start(module, init_arg, name, timeout)

    @staticmethod
    def call(server, request, timeout: float | None = 5.0):
        node = _node()
        return node.call(_dest(server), request, timeout, label="GenServer.call")

    @staticmethod
    def cast(server, request):
        node = _node()
        try:
            node.send(_dest(server), (GEN_CAST, request))
        except Exception:
            pass                     # a cast never fails, as in Elixir
        return OK

    @staticmethod
    def reply(from_, reply):
        _node().reply(from_, reply)
        return OK

    @staticmethod
    def stop(server, reason=NORMAL, timeout: float | None = 5.0):
        node = _node()
        proc = node.local_process(_dest(server))
        if proc is None:
            raise ValueError(f"no local server {server!r} to stop")
        done = node.monitor(node.current_process().pid, proc.pid)
        proc.mailbox.put(_Stop(reason))
        node.receive(timeout, match=lambda m: type(m) is tuple and len(m) == 5
                     and m[1] == done)
        return OK

    @staticmethod
    def whereis(name):
        return _node().whereis(name)


def _dest(server):
    if isinstance(server, tuple) and len(server) == 2:
        return (Atom(str(server[0])), Atom(str(server[1])))
    if isinstance(server, str) and not isinstance(server, Atom):
        return Atom(server)
    return server


def _start(module, init_arg, name, timeout):
    node = _node()
    if isinstance(module, GenServer):
        instance = module
    elif isinstance(module, type) and issubclass(module, GenServer):
        instance = module()
    else:
        raise TypeError(f"GenServer.start takes a GenServer subclass, not {module!r}")
    # Exit signals and the node's stop go to the server's own loop, through its mailbox.
    # (`proc` is bound below, before either can be called.)
    def on_exit_signal(sender, reason, exit2=False):
        proc.mailbox.put(_ExitSignal(sender, reason, exit2))

    def on_node_stop():
        proc.mailbox.put(_Stop(SHUTDOWN))   # terminates with reason :shutdown

    proc = node.spawn_process(label=type(instance).__name__,
                              on_exit_signal=on_exit_signal, on_node_stop=on_node_stop)
    if name is not None:
        existing = node.whereis(name)
        if existing is not None:
            node.exit_process(proc)
            return (ERROR, (Atom("already_started"), existing))
        node.register(name, proc.pid)
    started = threading.Event()
    outcome: list = []
    thread = threading.Thread(target=_run, args=(node, proc, instance, init_arg, started,
                                                 outcome),
                              name=f"GenServer {name or type(instance).__name__}",
                              daemon=True)
    thread.start()
    if not started.wait(timeout):
        # Like Elixir, a server whose init outlives the timeout does not live on.
        outcome.append("abandoned")
        return (ERROR, TIMEOUT)
    return outcome[0]


def _run(node, proc: Process, server: GenServer, init_arg, started, outcome):
    node.bind_thread(proc)
    label = proc.registered_name or type(server).__name__
    try:
        result = server.init(init_arg)
    except Exception as exc:
        log.error("** GenServer %s failed in init: %r", label, exc)
        outcome.append((ERROR, exc))
        started.set()
        node.exit_process(proc, Atom("init_failed"))
        return
    if result == "ignore":
        outcome.append(Atom("ignore"))
        started.set()
        node.exit_process(proc, NORMAL)
        return
    if type(result) is tuple and len(result) >= 2 and result[0] == "stop":
        outcome.append((ERROR, _as_reason(result[1])))
        started.set()
        node.exit_process(proc, _as_reason(result[1]))
        return
    if not (type(result) is tuple and len(result) in (2, 3) and result[0] == "ok"):
        outcome.append((ERROR, (Atom("bad_return_value"), result)))
        started.set()
        node.exit_process(proc, Atom("bad_return_value"))
        return
    if outcome:                         # start() gave up waiting for this init
        node.exit_process(proc, Atom("killed"))
        return
    state = result[1]
    timeout = result[2] if len(result) == 3 else None
    outcome.append((OK, proc.pid))
    started.set()
    reason = NORMAL
    try:
        while True:
            ok, message = proc.mailbox.take(_seconds(timeout))
            if not ok:
                message = TIMEOUT
            kind = type(message)
            if kind is _Stop:
                reason = message.reason
                break
            if kind is _ExitSignal:
                if message.reason == KILL and message.exit2:
                    reason = KILLED
                    break
                if not server.trap_exit:
                    if message.reason == NORMAL:
                        continue            # Erlang ignores a normal exit signal
                    reason = message.reason
                    break
                message = (EXIT, message.sender, message.reason)
            call = gen_call(message) if kind is tuple else None
            if call is not None:
                from_, request = call
                result = server.handle_call(request, from_, state)
                if type(result) is tuple and result[:1] == ("reply",) and len(result) in (3, 4):
                    node.reply(from_, result[1])
                    state, timeout = result[2], (result[3] if len(result) == 4 else None)
                    continue
                if type(result) is tuple and result[:1] == ("stop",) and len(result) == 4:
                    node.reply(from_, result[2])
                    state, reason = result[3], result[1]
                    break
            elif kind is tuple and len(message) == 2 and message[0] == GEN_CAST:
                result = server.handle_cast(message[1], state)
            else:
                result = server.handle_info(message, state)
            if type(result) is tuple and result[:1] == ("noreply",) and len(result) in (2, 3):
                state, timeout = result[1], (result[2] if len(result) == 3 else None)
                continue
            if type(result) is tuple and result[:1] == ("stop",) and len(result) == 3:
                reason, state = result[1], result[2]
                break
            raise BadReturn(f"bad return value from {type(server).__name__}: {result!r}")
    except Exception as exc:
        log.error("** GenServer %s terminating\n** Last message in was %r\n** Reason: %r",
                  label, locals().get("message"), exc)
        reason = (Atom(type(exc).__name__), str(exc))
    reason = _as_reason(reason)
    try:
        server.terminate(reason, state)
    except Exception as exc:
        log.error("** GenServer %s failed in terminate: %r", label, exc)
    node.exit_process(proc, reason)


def _seconds(timeout):
    if timeout is None or timeout == "infinity":
        return None
    return max(0.0, float(timeout) / 1000.0)   # Elixir's timeouts are milliseconds
