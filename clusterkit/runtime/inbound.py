"""Control messages that arrive from other nodes, turned into local effects.

All delivery of what other nodes send happens here (loop thread): the connection hands
over each run of decoded control messages, in order.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..dist import control
from ..etf import Pid
from . import rex
from .atoms import DOWN, NOPROC, PROCESS

if TYPE_CHECKING:
    from .connection import Connection
    from .node import LocalNode

log = logging.getLogger("clusterkit")


def recipient(node: "LocalNode", ev: Any):
    """The local process a Send or RegSend is for, or None (a missing name is logged)."""
    if type(ev) is control.Send:
        return node.local_process(ev.to) if isinstance(ev.to, Pid) else None
    return node.registered_or_log(ev.to_name, ev.sender)


def deliver_all(node: "LocalNode", conn: "Connection", events: list) -> None:
    """Deliver a run of control messages from `conn`, in order.

    Messages in a row for the same thread-run process go to its mailbox in one batch:
    one lock and one wake-up instead of one per message. Anything else is dispatched in
    order, after the batch before it.
    """
    batch_proc, batch = None, []
    for ev in events:
        kind = type(ev)
        if kind is control.Send or kind is control.RegSend:
            proc = recipient(node, ev)
            if proc is None:
                continue
            if proc.handler is None:
                if proc is not batch_proc:
                    if batch_proc is not None and batch_proc.alive:
                        batch_proc.mailbox.put_many(batch)
                    batch_proc, batch = proc, []
                batch.append(ev.message)
                continue
        if batch_proc is not None and batch_proc.alive:
            batch_proc.mailbox.put_many(batch)
        batch_proc, batch = None, []
        try:
            dispatch(node, conn, ev)
        except Exception:       # a bug of ours must not take the node down
            log.exception("error while handling %r from %s", ev, conn.peer)
    if batch_proc is not None and batch_proc.alive:
        batch_proc.mailbox.put_many(batch)


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
            node.deliver_pid(watcher, (DOWN, ev.ref, PROCESS, obj, ev.reason))
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
            node.exit_signal(proc, ev.sender, ev.reason, ev.exit2)
    elif kind is control.SpawnRequest:
        rex.spawn_request(node, conn, ev)
    else:
        log.debug("ignored control message %r from %s", ev, conn.peer)
