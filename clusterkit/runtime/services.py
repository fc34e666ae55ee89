"""The node's own registered processes: net_kernel, rex, global_name_server and its locker.

They run on the runtime loop (no thread each), so their handlers must not block:
rex hands the called function to a worker thread.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..etf import Atom, Pid
from . import global_, rex

if TYPE_CHECKING:
    from .connection import Connection
    from .node import LocalNode

log = logging.getLogger("clusterkit")

GEN_CALL, GEN_CAST = Atom("$gen_call"), Atom("$gen_cast")
IS_AUTH, YES = Atom("is_auth"), Atom("yes")


def _is_call(message: Any) -> bool:
    return (type(message) is tuple and len(message) == 3 and message[0] == GEN_CALL
            and type(message[1]) is tuple and len(message[1]) == 2
            and isinstance(message[1][0], Pid))


def start(node: "LocalNode") -> None:
    def net_kernel(message):
        if _is_call(message) and type(message[2]) is tuple and message[2][:1] == (IS_AUTH,):
            # net_adm:ping from any node: {is_auth, Node} -> yes.
            node.reply(message[1], YES)
        else:
            log.debug("net_kernel ignored %r", message)

    for name, handler in (("net_kernel", net_kernel), ("rex", rex.server(node))):
        proc = node.spawn_process(handler, label=name)
        node.register(name, proc.pid)

    # global (the transitive mesh): see global_.py. The locker is a pid that peers
    # name in lock ids; all of its protocol goes through the server.
    server = node.spawn_process(label="global_name_server")
    locker = node.spawn_process(lambda m: log.debug("global locker ignored %r", m),
                                label="global_locker")
    state = global_.Global(node, server.pid, locker.pid)

    def global_name_server(message):
        try:
            state.handle(message)
        except Exception:
            log.exception("global_name_server failed on %r", message)

    server.handler = global_name_server
    node.register("global_name_server", server.pid)
    node.global_state = state


def node_up(node: "LocalNode", conn: "Connection") -> None:
    state = getattr(node, "global_state", None)
    if state is not None:
        # The runtime calls this just before it marks the connection up; global's
        # first message must go out on it, so start once the connection is up.
        node.loop.call_soon(state.node_up, conn.peer, conn.hidden)


def node_down(node: "LocalNode", conn: "Connection") -> None:
    state = getattr(node, "global_state", None)
    if state is not None:
        state.node_down(conn.peer)
