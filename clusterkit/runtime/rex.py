"""rpc: the `rex` server that runs calls from other nodes, and `rpc.call` toward them.

A call names a module and a function. On a clusterkit node that is a Python module
(`math`, `os.path`, your own) and a function in it; the module `erlang` maps to a few
node functions (`erlang:node()` and friends) so that the classic examples work.
"""
from __future__ import annotations

import concurrent.futures
import importlib
import logging
import traceback
from typing import TYPE_CHECKING, Any

from ..etf import Atom, Pid
from . import cnode
from .atoms import BADRPC, EXIT, GEN_CALL, GEN_CAST, UNDEF
from .errors import CallError, CallTimeout

if TYPE_CHECKING:
    from .node import LocalNode

log = logging.getLogger("clusterkit")

CALL, CAST = Atom("call"), Atom("cast")

def new_pool(node: "LocalNode") -> concurrent.futures.ThreadPoolExecutor:
    """The node's own workers for rpc and erpc calls (services.start makes it).

    Generous, because a call may block (or call back into this node): a handful of
    slow calls must not starve every later one. Its queue is the executor's, unbounded;
    what bounds it is the callers: each rpc.call waits for its answer. LocalNode.stop
    shuts it down.
    """
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=64, thread_name_prefix=f"clusterkit-rex-{node.name.alive}")


def _pool(node: "LocalNode") -> concurrent.futures.ThreadPoolExecutor:
    return node.rex_pool


def _erlang_module(node: "LocalNode"):
    class erlang:  # noqa: N801 - named like the Erlang module it stands for
        @staticmethod
        def node(*_):
            return node.atom

        @staticmethod
        def nodes(kind="visible"):
            return node.nodes(str(kind))

        @staticmethod
        def is_alive():
            return node.alive

        @staticmethod
        def get_cookie():
            return Atom(node.cookie)
    return erlang


def resolve(node: "LocalNode", module: str, function: str):
    module, function = str(module), str(function)
    if module == "erlang":
        target = _erlang_module(node)
    else:
        target = importlib.import_module(module)
    fn = getattr(target, function, None)
    if fn is None or not callable(fn):
        raise LookupError(f"{module}.{function} does not exist")
    return fn


def apply(node: "LocalNode", module, function, args) -> Any:
    """Run module.function(*args) the way rex does: failures become {badrpc, ...}."""
    refused = cnode.refused(node, module, function)
    if refused is not None:
        return cnode.refusal(refused)
    try:
        fn = resolve(node, module, function)
    except (ImportError, LookupError):
        return (BADRPC, (EXIT, (UNDEF, [(Atom(str(module)), Atom(str(function)),
                                         list(args), [])])))
    try:
        return fn(*args)
    except Exception as exc:  # the caller gets the error; this node goes on serving
        log.debug("rpc %s.%s failed:\n%s", module, function, traceback.format_exc())
        return (BADRPC, (EXIT, (Atom(type(exc).__name__), str(exc))))


ERPC, EXECUTE_CALL, EXECUTE_CAST = Atom("erpc"), Atom("execute_call"), Atom("execute_cast")
RETURN, ERROR, MONITOR, LINK = Atom("return"), Atom("error"), Atom("monitor"), Atom("link")


def _erpc_outcome(node: "LocalNode", ref, module, function, args):
    """What erpc:execute_call/4 exits with: {Ref, return, Value} or {Ref, error, R, Stack}."""
    refused = cnode.refused(node, module, function)
    if refused is not None:
        return (ref, ERROR, (cnode.NOTSUP, cnode.charlist(refused)), [])
    try:
        fn = resolve(node, module, function)
    except (ImportError, LookupError):
        return (ref, ERROR, UNDEF, [(Atom(str(module)), Atom(str(function)), list(args), [])])
    try:
        return (ref, RETURN, fn(*args))
    except Exception as exc:  # the caller gets the error; this node goes on serving
        return (ref, ERROR, (Atom(type(exc).__name__), str(exc)), [])


def spawn_request(node: "LocalNode", conn, ev) -> None:
    """Serve Erlang's erpc: a SPAWN_REQUEST of erpc:execute_call/4 or execute_cast/3.

    The caller monitors the new process and reads the result from its exit reason,
    so we run the function on a worker thread and end the process with that reason.
    Other spawns get the error `notsup`: a Python node cannot run Erlang code.
    """
    from ..dist import control
    mfa, args = ev.mfa, ev.args
    supported = (type(mfa) is tuple and len(mfa) == 3 and mfa[0] == ERPC and isinstance(
        args, list) and ((mfa[1] == EXECUTE_CALL and len(args) == 4)
                         or (mfa[1] == EXECUTE_CAST and len(args) == 3)))
    if not supported:
        log.warning("%s asked %s to spawn %r; a clusterkit node only serves erpc calls",
                    conn.peer, node.atom, mfa)
        conn.send_frame(control.spawn_reply_frame(ev.req_id, ev.sender, 0, Atom("notsup")))
        return
    options = ev.options if isinstance(ev.options, list) else []
    proc = node.spawn_process(label="erpc")
    flags = 0
    if LINK in options:
        proc.links.add(ev.sender)
        flags |= 1
    if MONITOR in options:
        proc.monitored_by[ev.req_id] = (ev.sender, proc.pid)
        flags |= 2
    conn.send_frame(control.spawn_reply_frame(ev.req_id, ev.sender, flags, proc.pid))
    if mfa[1] == EXECUTE_CALL and cnode.is_remote_shell(args):
        node.exit_process(proc, cnode.refuse_remote_shell(node, conn.peer, ev.group_leader,
                                                          args[0]))
        return

    def run():
        if mfa[1] == EXECUTE_CALL:
            ref, module, function, call_args = args
            outcome = _erpc_outcome(node, ref, module, function, list(call_args))
        else:
            module, function, call_args = args
            apply(node, module, function, list(call_args))
            outcome = Atom("normal")
        try:
            node.etf_check(outcome)
        except Exception as exc:   # a result Erlang cannot receive
            outcome = (args[0], ERROR, (Atom("badarg"), str(exc)), [])
        node.exit_process(proc, outcome)
    _pool(node).submit(run)


def server(node: "LocalNode"):
    def handle(message):
        if (type(message) is tuple and len(message) == 3 and message[0] == GEN_CALL
                and type(message[2]) is tuple and len(message[2]) >= 4
                and message[2][0] == CALL and type(message[1]) is tuple):
            from_ = message[1]
            _, module, function, args = message[2][:4]

            def run():
                result = apply(node, module, function, list(args) if isinstance(args, list)
                               else [args])
                try:
                    node.reply(from_, result)
                except Exception as exc:   # e.g. a result that cannot be encoded
                    node.reply(from_, (BADRPC, (EXIT, (Atom("badarg"), str(exc)))))
            _pool(node).submit(run)
        elif (type(message) is tuple and len(message) == 2 and message[0] == GEN_CAST
              and type(message[1]) is tuple and len(message[1]) >= 4
              and message[1][0] == CAST):
            _, module, function, args = message[1][:4]
            _pool(node).submit(apply, node, module, function, list(args))
        elif type(message) is tuple and len(message) == 2 and isinstance(message[0], Pid) \
                and message[1] == Atom("features_request"):
            # OTP 23+ asks which rpc features we have; none beyond plain rex calls.
            node.send(message[0], (Atom("features_reply"), node.atom, []))
        elif cnode.is_plain_call(message):
            cnode.serve_plain_call(node, message, apply, _pool(node))
        else:
            log.debug("rex ignored %r", message)
    return handle


def call(node: "LocalNode", target_node, module, function, args=(), timeout=None) -> Any:
    """rpc:call/4,5. Returns the result, or ('badrpc', reason) like Erlang."""
    me = node.current_process()
    request = (CALL, Atom(str(module)), Atom(str(function)), list(args), me.pid)
    if Atom(target_node) == node.atom:
        return apply(node, module, function, list(args))
    try:
        return node.call((Atom("rex"), Atom(target_node)), request, timeout, label="rpc.call")
    except CallTimeout:
        return (BADRPC, Atom("timeout"))
    except CallError as exc:
        if exc.reason == Atom("noconnection"):
            return (BADRPC, Atom("nodedown"))
        return (BADRPC, (EXIT, exc.reason))
