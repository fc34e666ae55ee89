"""The node's own registered processes: net_kernel, rex, global_name_server and its locker.

They run on the runtime loop (no thread each), so their handlers must not block:
rex hands the called function to a worker thread.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..etf import Atom
from . import global_, rex
from .atoms import YES, gen_call

if TYPE_CHECKING:
    from .node import LocalNode

log = logging.getLogger("clusterkit")

IS_AUTH = Atom("is_auth")


def start(node: "LocalNode") -> None:
    def net_kernel(message):
        call = gen_call(message)
        if call is not None and type(call[1]) is tuple and call[1][:1] == (IS_AUTH,):
            # net_adm:ping from any node: {is_auth, Node} -> yes.
            node.reply(call[0], YES)
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
    node.add_node_hook(on_up=state.node_up, on_down=lambda peer, _reason: state.node_down(peer))
    node.rex_pool = rex.new_pool(node)
