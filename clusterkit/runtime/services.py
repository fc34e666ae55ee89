"""The node's own registered processes: net_kernel, rex and a quiet global_name_server.

They run on the runtime loop (no thread each), so their handlers must not block:
rex hands the called function to a worker thread.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..etf import Atom, Pid
from . import rex

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

    def global_name_server(message):
        # The `global` protocol is not implemented yet; its casts are expected and ignored.
        log.debug("global_name_server ignored %r", message)

    for name, handler in (("net_kernel", net_kernel), ("rex", rex.server(node)),
                          ("global_name_server", global_name_server)):
        proc = node.spawn_process(handler, label=name)
        node.register(name, proc.pid)


def node_up(node: "LocalNode", conn: "Connection") -> None:
    pass


def node_down(node: "LocalNode", conn: "Connection") -> None:
    pass
