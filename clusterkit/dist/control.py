"""Distribution control messages: the frames that carry sends, links, monitors and exits.

`decode(frame)` turns one frame body into one event below; the `*_frame` functions
build frame bodies (without the 4-byte length; see framing.frame). Pure functions.
Reference: erts/doc "Distribution Protocol", section "Protocol between connected nodes".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import etf
from ..etf import Atom, ETFError, Pid, Reference
from .framing import PASS_THROUGH

LINK, SEND, EXIT, UNLINK, NODE_LINK, REG_SEND, GROUP_LEADER, EXIT2 = 1, 2, 3, 4, 5, 6, 7, 8
SEND_TT, EXIT_TT, REG_SEND_TT, EXIT2_TT = 12, 13, 16, 18
MONITOR_P, DEMONITOR_P, MONITOR_P_EXIT = 19, 20, 21
SEND_SENDER, SEND_SENDER_TT = 22, 23
PAYLOAD_EXIT, PAYLOAD_EXIT_TT, PAYLOAD_EXIT2, PAYLOAD_EXIT2_TT = 24, 25, 26, 27
PAYLOAD_MONITOR_P_EXIT = 28
SPAWN_REQUEST, SPAWN_REQUEST_TT, SPAWN_REPLY, SPAWN_REPLY_TT = 29, 30, 31, 32
ALIAS_SEND, ALIAS_SEND_TT = 33, 34
UNLINK_ID, UNLINK_ID_ACK = 35, 36

_EMPTY = Atom("")
_P = bytes([PASS_THROUGH])


class ControlError(Exception):
    """A frame that is not a well-formed distribution message."""


# --- events -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Send:
    to: Any                 # a Pid (or, for ALIAS_SEND, a Reference)
    message: Any
    sender: Pid | None = None


@dataclass(frozen=True)
class RegSend:
    sender: Pid
    to_name: Atom
    message: Any


@dataclass(frozen=True)
class Link:
    sender: Pid
    to: Pid


@dataclass(frozen=True)
class Unlink:
    id: int | None          # None for the old UNLINK
    sender: Pid
    to: Pid


@dataclass(frozen=True)
class UnlinkAck:
    id: int
    sender: Pid
    to: Pid


@dataclass(frozen=True)
class Exit:
    sender: Pid
    to: Pid
    reason: Any
    exit2: bool = False     # EXIT2: erlang:exit/2 sent on purpose, not a broken link


@dataclass(frozen=True)
class Monitor:
    sender: Pid
    target: Any             # Pid or registered name (Atom)
    ref: Reference


@dataclass(frozen=True)
class Demonitor:
    sender: Pid
    target: Any
    ref: Reference


@dataclass(frozen=True)
class MonitorExit:
    target: Any             # the monitored Pid or name, as the monitor named it
    to: Pid
    ref: Reference
    reason: Any


@dataclass(frozen=True)
class SpawnRequest:
    req_id: Reference
    sender: Pid
    group_leader: Pid
    mfa: Any
    options: Any
    args: Any


@dataclass(frozen=True)
class Unsupported:
    """A well-formed control message the runtime does not act on."""
    tag: int
    control: tuple


# --- decoding ---------------------------------------------------------------------------

class ControlMemo:
    """The last control message a connection decoded, bytes and term.

    A stream of sends to one process repeats the same control bytes. ETF terms are
    self-delimiting, so when a frame starts with exactly those bytes it holds the same
    control term: decoding it again is skipped (about 40% of a small message's decode).
    """
    __slots__ = ("raw", "term")

    def __init__(self):
        self.raw = b""
        self.term = None


def decode(frame: bytes, memo: ControlMemo | None = None, *,
           max_inflated: int = etf.DEFAULT_MAX_INFLATED) -> Any:
    """One frame body -> one event. A compressed term may inflate to at most max_inflated bytes."""
    if not frame:
        raise ControlError("empty frame is a tick, not a message")
    if frame[0] != PASS_THROUGH:
        raise ControlError(f"frame starts with byte {frame[0]}, expected 112 ('p'): "
                           "this node offered no atom cache")
    try:
        if memo is not None and memo.raw and frame.startswith(memo.raw, 1):
            control, pos = memo.term, 1 + len(memo.raw)
        else:
            control, pos = etf.decode_from(frame, 1, max_inflated=max_inflated)
            if memo is not None:
                memo.raw, memo.term = frame[1:pos], control
        payload = None
        has_payload = pos < len(frame)
        if has_payload:
            payload, end = etf.decode_from(frame, pos, max_inflated=max_inflated)
            if end != len(frame):
                raise ControlError(f"{len(frame) - end} stray bytes after the message")
    except ETFError as exc:
        raise ControlError(f"bad term in distribution message: {exc}") from None
    if not isinstance(control, tuple) or not control or not isinstance(control[0], int) \
            or isinstance(control[0], bool):
        raise ControlError(f"control message {control!r:.80} is not a tuple with a tag")
    try:
        return _decode_control(control, payload, has_payload)
    except (ValueError, IndexError, TypeError) as exc:
        raise ControlError(f"malformed control message {control!r:.120}: {exc}") from None


def _need(control, n, has_payload, payload_expected):
    if len(control) != n:
        raise ValueError(f"expected {n} elements, got {len(control)}")
    if has_payload != payload_expected:
        raise ValueError("message payload missing" if payload_expected
                         else "unexpected message payload")


def _pid(x):
    if not isinstance(x, Pid):
        raise ValueError(f"{x!r:.60} is not a pid")
    return x


def _ref(x):
    if not isinstance(x, Reference):
        raise ValueError(f"{x!r:.60} is not a reference")
    return x


def _proc(x):
    if isinstance(x, Pid) or isinstance(x, Atom):
        return x
    if isinstance(x, bool) or x is None:   # atoms true/false/nil decode to Python values
        return Atom({True: "true", False: "false", None: "nil"}[x])
    raise ValueError(f"{x!r:.60} is neither a pid nor a name")


def _decode_control(c: tuple, payload, has_payload):
    tag = c[0]
    if tag == SEND:
        _need(c, 3, has_payload, True)
        return Send(_pid(c[2]), payload)
    if tag == SEND_TT:
        _need(c, 4, has_payload, True)
        return Send(_pid(c[2]), payload)
    if tag in (SEND_SENDER, SEND_SENDER_TT):
        _need(c, 3 if tag == SEND_SENDER else 4, has_payload, True)
        return Send(_pid(c[2]), payload, _pid(c[1]))
    if tag in (ALIAS_SEND, ALIAS_SEND_TT):
        _need(c, 3 if tag == ALIAS_SEND else 4, has_payload, True)
        return Send(_ref(c[2]), payload, _pid(c[1]))
    if tag in (REG_SEND, REG_SEND_TT):
        _need(c, 4 if tag == REG_SEND else 5, has_payload, True)
        return RegSend(_pid(c[1]), _proc(c[3]), payload)
    if tag == LINK:
        _need(c, 3, has_payload, False)
        return Link(_pid(c[1]), _pid(c[2]))
    if tag == UNLINK:
        _need(c, 3, has_payload, False)
        return Unlink(None, _pid(c[1]), _pid(c[2]))
    if tag == UNLINK_ID:
        _need(c, 4, has_payload, False)
        return Unlink(int(c[1]), _pid(c[2]), _pid(c[3]))
    if tag == UNLINK_ID_ACK:
        _need(c, 4, has_payload, False)
        return UnlinkAck(int(c[1]), _pid(c[2]), _pid(c[3]))
    if tag in (EXIT, EXIT2):
        _need(c, 4, has_payload, False)
        return Exit(_pid(c[1]), _pid(c[2]), c[3], tag == EXIT2)
    if tag in (EXIT_TT, EXIT2_TT):
        _need(c, 5, has_payload, False)
        return Exit(_pid(c[1]), _pid(c[2]), c[4], tag == EXIT2_TT)
    if tag in (PAYLOAD_EXIT, PAYLOAD_EXIT2):
        _need(c, 3, has_payload, True)
        return Exit(_pid(c[1]), _pid(c[2]), payload, tag == PAYLOAD_EXIT2)
    if tag in (PAYLOAD_EXIT_TT, PAYLOAD_EXIT2_TT):
        _need(c, 4, has_payload, True)
        return Exit(_pid(c[1]), _pid(c[2]), payload, tag == PAYLOAD_EXIT2_TT)
    if tag == MONITOR_P:
        _need(c, 4, has_payload, False)
        return Monitor(_pid(c[1]), _proc(c[2]), _ref(c[3]))
    if tag == DEMONITOR_P:
        _need(c, 4, has_payload, False)
        return Demonitor(_pid(c[1]), _proc(c[2]), _ref(c[3]))
    if tag == MONITOR_P_EXIT:
        _need(c, 5, has_payload, False)
        return MonitorExit(_proc(c[1]), _pid(c[2]), _ref(c[3]), c[4])
    if tag == PAYLOAD_MONITOR_P_EXIT:
        _need(c, 4, has_payload, True)
        return MonitorExit(_proc(c[1]), _pid(c[2]), _ref(c[3]), payload)
    if tag in (SPAWN_REQUEST, SPAWN_REQUEST_TT):
        _need(c, 6 if tag == SPAWN_REQUEST else 7, has_payload, True)
        return SpawnRequest(_ref(c[1]), _pid(c[2]), _pid(c[3]), c[4], c[5], payload)
    if tag in (NODE_LINK, GROUP_LEADER, SPAWN_REPLY, SPAWN_REPLY_TT):
        return Unsupported(tag, c)
    raise ValueError(f"unknown control message tag {tag}")


# --- encoding ---------------------------------------------------------------------------

def _frame(control: tuple, message: Any = None, with_message: bool = False) -> bytes:
    if with_message:
        return _P + etf.encode(control) + etf.encode(message)
    return _P + etf.encode(control)


# A sender sends to the same few destinations again and again: keep their encoded
# control messages (about a quarter of the cost of a small send). Bounded, so a node
# that talks to many pids does not grow it without end.
_CONTROL_CACHE: dict = {}
_CONTROL_CACHE_MAX = 4096


def _cached_control(key, control: tuple) -> bytes:
    head = _CONTROL_CACHE.get(key)
    if head is None:
        if len(_CONTROL_CACHE) >= _CONTROL_CACHE_MAX:
            _CONTROL_CACHE.clear()
        head = _CONTROL_CACHE[key] = _P + etf.encode(control)
    return head


def send_frame(to: Pid, message: Any) -> bytes:
    return _cached_control((SEND, to), (SEND, _EMPTY, to)) + etf.encode(message)


def reg_send_frame(sender: Pid, to_name: str, message: Any) -> bytes:
    name = Atom(to_name)
    return _cached_control((REG_SEND, sender, name),
                           (REG_SEND, sender, _EMPTY, name)) + etf.encode(message)


def link_frame(sender: Pid, to: Pid) -> bytes:
    return _frame((LINK, sender, to))


def unlink_id_frame(id_: int, sender: Pid, to: Pid) -> bytes:
    return _frame((UNLINK_ID, id_, sender, to))


def unlink_id_ack_frame(id_: int, sender: Pid, to: Pid) -> bytes:
    return _frame((UNLINK_ID_ACK, id_, sender, to))


def exit_frame(sender: Pid, to: Pid, reason: Any, payload: bool = True,
               exit2: bool = False) -> bytes:
    if payload:
        return _frame((PAYLOAD_EXIT2 if exit2 else PAYLOAD_EXIT, sender, to), reason, True)
    return _frame((EXIT2 if exit2 else EXIT, sender, to, reason))


def monitor_frame(sender: Pid, target: Any, ref: Reference) -> bytes:
    return _frame((MONITOR_P, sender, target, ref))


def demonitor_frame(sender: Pid, target: Any, ref: Reference) -> bytes:
    return _frame((DEMONITOR_P, sender, target, ref))


def spawn_reply_frame(req_id: Reference, to: Pid, flags: int, result: Any) -> bytes:
    """SPAWN_REPLY: result is the new pid, or an error atom; flags 1 = linked, 2 = monitored."""
    return _frame((SPAWN_REPLY, req_id, to, flags, result))


def monitor_exit_frame(target: Any, to: Pid, ref: Reference, reason: Any,
                       payload: bool = True) -> bytes:
    if payload:
        return _frame((PAYLOAD_MONITOR_P_EXIT, target, to, ref), reason, True)
    return _frame((MONITOR_P_EXIT, target, to, ref, reason))
