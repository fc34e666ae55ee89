"""Control messages that arrive from other nodes, turned into local effects."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..dist import control
from ..etf import Atom, Pid

if TYPE_CHECKING:
    from .connection import Connection
    from .node import LocalNode

log = logging.getLogger("clusterkit")

DOWN, PROCESS, NOPROC = Atom("DOWN"), Atom("process"), Atom("noproc")


def recipient(node: "LocalNode", ev: Any):
    """The local process a Send or RegSend is for, or None (a missing name is logged)."""
    if type(ev) is control.Send:
        return node.local_process(ev.to) if isinstance(ev.to, Pid) else None
    return node.registered_or_log(ev.to_name, ev.sender)


def dispatch(node: "LocalNode", conn: "Connection", ev: Any) -> None:
    kind = type(ev)
    if kind is control.Send or kind is control.RegSend:
        proc = recipient(node, ev)
        if proc is not None:
            node.deliver_local(proc, ev.message)
    elif kind is control.Monitor:
        proc = node.local_process(ev.target)
        if proc is None:
            conn.send_frame(control.monitor_exit_frame(ev.target, ev.sender, ev.ref,
                                                       NOPROC, conn.payload_exits))
        else:
            proc.monitored_by[ev.ref] = (ev.sender, ev.target)
    elif kind is control.Demonitor:
        proc = node.local_process(ev.target)
        if proc is not None:
            proc.monitored_by.pop(ev.ref, None)
    elif kind is control.MonitorExit:
        entry = conn.out_monitors.pop(ev.ref, None)
        if entry is not None:
            watcher, obj = entry
            node._deliver_pid(watcher, (DOWN, ev.ref, PROCESS, obj, ev.reason))
    elif kind is control.Link:
        proc = node.local_process(ev.to)
        if proc is None:
            conn.send_frame(control.exit_frame(ev.to, ev.sender, NOPROC,
                                               conn.payload_exits))
        else:
            proc.links.add(ev.sender)
    elif kind is control.Unlink:
        proc = node.local_process(ev.to)
        if proc is not None:
            proc.links.discard(ev.sender)
        if ev.id is not None:
            conn.send_frame(control.unlink_id_ack_frame(ev.id, ev.to, ev.sender))
    elif kind is control.Exit:
        proc = node.local_process(ev.to)
        if proc is not None:
            proc.links.discard(ev.sender)
            node._exit_signal(proc, ev.sender, ev.reason, ev.exit2)
    elif kind is control.SpawnRequest:
        from . import rex
        rex.spawn_request(node, conn, ev)
    else:
        log.debug("ignored control message %r from %s", ev, conn.peer)
