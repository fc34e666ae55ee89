"""The distribution handshake, version 6, as a sans-I/O state machine.

Bytes go in with `receive_data`, events come out, and bytes to send wait in
`data_to_send()`. No sockets, no clocks: the runtime owns those (see h11 for the style).

    initiator (A)                        acceptor (B)
    send_name  'N' flags creation name  ->
                                        <- status 's' ok | ok_simultaneous | nok | alive | not_allowed
                                        <- challenge 'N' flags challenge creation name
    reply 'r' challenge_A digest        ->
                                        <- ack 'a' digest

Digest = md5(cookie + decimal(challenge)). During the handshake every message has a
2-byte length; after it, the connection switches to 4-byte frames (see framing.py).
We always send 'N' (version 6): OTP 25.0-25.2 rejects the old 'n' name message.
"""
from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass

from ..etf import atom_text
from . import flags as F

_NAME = struct.Struct(">QIH")          # 'N' send_name: flags, creation, name length
_CHALLENGE = struct.Struct(">QIIH")    # 'N' challenge: flags, challenge, creation, name length
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")

# The longest honest handshake message is a name message with a 255+1+255-byte node
# name: about 530 bytes. A longer length is garbage, refused at once instead of awaited.
MAX_MESSAGE = 1024


class HandshakeError(Exception):
    """A peer broke the handshake protocol (malformed or unexpected message)."""


def digest(cookie: str, challenge: int) -> bytes:
    return hashlib.md5((cookie + str(challenge)).encode("latin-1", "replace")).digest()


def new_challenge() -> int:
    return secrets.randbits(32)


# --- events ---------------------------------------------------------------------------

@dataclass(frozen=True)
class NameReceived:
    """Acceptor: the initiator said who it is. Answer with `accept()` or `reject()`."""
    node: str
    flags: int
    creation: int


@dataclass(frozen=True)
class AliveQuery:
    """Initiator: the acceptor already has a connection to us. Answer with `answer_alive()`."""


@dataclass(frozen=True)
class AliveConfirmed:
    """Acceptor: after our `alive` status the initiator said `true`: its old connection
    to us is dead, so the runtime drops ours and this handshake goes on."""


@dataclass(frozen=True)
class SimultaneousAccepted:
    """Initiator: the acceptor answered ok_simultaneous; its own attempt to us is dropped."""


@dataclass(frozen=True)
class Completed:
    """The handshake succeeded. `leftover` holds bytes that already belong to the connection."""
    node: str
    flags: int           # the flags both sides agreed on (ours & theirs)
    peer_flags: int
    creation: int
    leftover: bytes


@dataclass(frozen=True)
class Failed:
    """The handshake ended without a connection. `log` is the line to log, if any."""
    reason: str
    log: str | None = None
    protocol_error: bool = False    # the peer sent bytes that break the protocol


class Role(enum.Enum):
    INITIATOR = "initiator"
    ACCEPTOR = "acceptor"


class State(enum.Enum):
    AWAIT_NAME = "await name"            # acceptor
    AWAIT_DECISION = "await decision"    # acceptor, after NameReceived
    AWAIT_ALIVE_REPLY = "await alive reply"  # acceptor, after sending `alive`
    AWAIT_REPLY = "await reply"          # acceptor
    AWAIT_STATUS = "await status"        # initiator
    AWAIT_ALIVE_ANSWER = "await alive answer"
    AWAIT_CHALLENGE = "await challenge"  # initiator
    AWAIT_ACK = "await ack"              # initiator
    CONNECTED = "connected"
    CLOSED = "closed"


class Handshake:
    """One side of one handshake.

    `this_node` is our full name, `this_flags` what we offer (PUBLISHED is added unless
    hidden), `creation` our EPMD creation. An initiator knows `peer_node` and its cookie
    up front; an acceptor learns the peer from NameReceived and passes the cookie to
    `accept()`.
    """

    def __init__(self, role: Role, this_node: str, creation: int, *, hidden: bool = False,
                 this_flags: int = F.OFFERED, required_flags: int = F.REQUIRED,
                 peer_node: str | None = None, cookie: str | None = None,
                 challenge: int | None = None):
        self.role = role
        self.this_node = this_node
        self.creation = creation
        self.this_flags = this_flags | (0 if hidden else F.PUBLISHED)
        self.required_flags = required_flags
        self.peer_node = peer_node
        self.peer_flags = 0
        self.peer_creation = 0
        self.cookie = cookie
        self._challenge = new_challenge() if challenge is None else challenge
        self._in = bytearray()
        self._out = bytearray()
        if role is Role.INITIATOR:
            if peer_node is None or cookie is None:
                raise ValueError("an initiator needs peer_node and cookie")
            self.state = State.AWAIT_STATUS
            name = this_node.encode()
            self._send(b"N" + _NAME.pack(self.this_flags, creation, len(name)) + name)
        else:
            self.state = State.AWAIT_NAME

    # --- I/O side -----------------------------------------------------------------
    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes) -> list:
        """Feed bytes from the peer; returns the events they complete."""
        if self.state in (State.CONNECTED, State.CLOSED):
            raise HandshakeError(f"handshake already {self.state.value}")
        self._in += data
        events: list = []
        while self.state not in (State.CONNECTED, State.CLOSED,
                                 State.AWAIT_DECISION, State.AWAIT_ALIVE_ANSWER):
            if len(self._in) < 2:
                break
            (length,) = _U16.unpack_from(self._in)
            if length > MAX_MESSAGE:
                self.state = State.CLOSED
                events.append(Failed(f"handshake message of {length} bytes announced; "
                                     f"no handshake message is longer than {MAX_MESSAGE}",
                                     protocol_error=True))
                break
            if len(self._in) < 2 + length:
                break
            message = bytes(self._in[2:2 + length])
            del self._in[:2 + length]
            try:
                event = self._handle(message)
            except HandshakeError as exc:
                self.state = State.CLOSED
                events.append(Failed(str(exc), protocol_error=True))
                break
            if event is not None:
                events.append(event)
            if isinstance(event, Completed):
                break
        return events

    def connection_lost(self) -> Failed:
        """The socket closed before the handshake completed."""
        was = self.state
        self.state = State.CLOSED
        if self.role is Role.INITIATOR and was is State.AWAIT_ACK:
            # The acceptor closes without a word when our digest is wrong: a cookie mismatch.
            return Failed("connection closed by the other node after our challenge reply "
                          "(most likely the cookies differ)")
        return Failed(f"connection closed during the handshake ({was.value})")

    # --- decisions the runtime makes ------------------------------------------------
    def accept(self, cookie: str, status: str = "ok") -> None:
        """Acceptor: say `ok` (or `ok_simultaneous`) and send our challenge."""
        self._expect(State.AWAIT_DECISION)
        if status not in ("ok", "ok_simultaneous"):
            raise ValueError(f"accept() takes ok or ok_simultaneous, not {status!r}")
        self.cookie = cookie
        self._send(b"s" + status.encode())
        self._send_challenge()

    def ask_alive(self, cookie: str) -> None:
        """Acceptor: we already have a connection to this node; ask whether it is dead."""
        self._expect(State.AWAIT_DECISION)
        self.cookie = cookie
        self._send(b"salive")
        self.state = State.AWAIT_ALIVE_REPLY

    def _send_challenge(self) -> None:
        name = self.this_node.encode()
        self._send(b"N" + _CHALLENGE.pack(self.this_flags, self._challenge, self.creation,
                                          len(name)) + name)
        self.state = State.AWAIT_REPLY

    def reject(self, status: str = "nok", log: str | None = None) -> Failed:
        """Acceptor: refuse with `nok`, `not_allowed` (or `alive` is handled by the runtime)."""
        self._expect(State.AWAIT_DECISION)
        self._send(b"s" + status.encode())
        self.state = State.CLOSED
        return Failed(f"refused with status {status}", log)

    def answer_alive(self, keep_going: bool) -> None:
        """Initiator: answer the acceptor's `alive` status with true or false."""
        self._expect(State.AWAIT_ALIVE_ANSWER)
        self._send(b"strue" if keep_going else b"sfalse")
        self.state = State.AWAIT_CHALLENGE if keep_going else State.CLOSED

    # --- internals ------------------------------------------------------------------
    def _expect(self, state: State) -> None:
        if self.state is not state:
            raise HandshakeError(f"not expected in state {self.state.value}")

    def _send(self, message: bytes) -> None:
        self._out += _U16.pack(len(message)) + message

    def _handle(self, m: bytes):
        tag = m[:1]
        st = self.state
        if st is State.AWAIT_NAME:
            if tag == b"n":
                raise HandshakeError("peer sent an old version 5 'n' name message; "
                                     "clusterkit speaks version 6 only")
            if tag != b"N" or len(m) < 1 + _NAME.size:
                raise HandshakeError(f"expected a 'N' name message, got {m[:16]!r}")
            peer_flags, creation, nlen = _NAME.unpack_from(m, 1)
            peer_flags = F.expand(peer_flags)
            name = m[1 + _NAME.size:]
            if len(name) != nlen:
                raise HandshakeError(f"name message announces {nlen} name bytes, has {len(name)}")
            node = _node_name(name)
            self.peer_node, self.peer_flags, self.peer_creation = node, peer_flags, creation
            absent = F.missing(self.required_flags, peer_flags)
            if absent:
                self._send(b"snot_allowed")
                self.state = State.CLOSED
                return Failed(
                    "peer lacks mandatory flags " + ", ".join(absent),
                    f"** {atom_text(self.this_node)}: Connection attempt from node "
                    f"{atom_text(node)} rejected since it cannot handle "
                    f"{_erlang_string_list(absent)}.**")
            self.state = State.AWAIT_DECISION
            return NameReceived(node, peer_flags, creation)

        if st is State.AWAIT_ALIVE_REPLY:
            if m == b"strue":
                self._send_challenge()
                return AliveConfirmed()
            if m == b"sfalse":
                self.state = State.CLOSED
                return Failed(f"{self.peer_node} still uses its connection to us (alive)")
            raise HandshakeError(f"expected the answer to `alive`, got {m[:16]!r}")

        if st is State.AWAIT_STATUS:
            if tag != b"s":
                raise HandshakeError(f"expected a status message, got {m[:16]!r}")
            status = m[1:].decode("latin-1")
            if status in ("ok", "ok_simultaneous"):
                self.state = State.AWAIT_CHALLENGE
                return SimultaneousAccepted() if status == "ok_simultaneous" else None
            if status == "alive":
                self.state = State.AWAIT_ALIVE_ANSWER
                return AliveQuery()
            self.state = State.CLOSED
            if status == "nok":
                return Failed("the other node is already connecting to us (nok)")
            if status == "not_allowed":
                return Failed(f"{self.peer_node} does not allow this node to connect "
                              "(not_allowed)")
            return Failed(f"unexpected handshake status {status!r}")

        if st is State.AWAIT_CHALLENGE:
            if tag != b"N" or len(m) < 1 + _CHALLENGE.size:
                raise HandshakeError(f"expected a 'N' challenge message, got {m[:16]!r}")
            peer_flags, challenge, creation, nlen = _CHALLENGE.unpack_from(m, 1)
            peer_flags = F.expand(peer_flags)
            name = m[1 + _CHALLENGE.size:]
            if len(name) != nlen:
                raise HandshakeError(f"challenge announces {nlen} name bytes, has {len(name)}")
            node = _node_name(name)
            if node != self.peer_node:
                # Erlang's rule: the acceptor must call itself what we dialled.
                raise HandshakeError(f"dialled {self.peer_node} but the node there is {node}")
            if not peer_flags & F.HANDSHAKE_23:
                raise HandshakeError("challenge without the HANDSHAKE_23 flag")
            absent = F.missing(self.required_flags, peer_flags)
            if absent:
                self.state = State.CLOSED
                return Failed(
                    "peer lacks mandatory flags " + ", ".join(absent),
                    f"** {atom_text(self.this_node)}: Connection attempt to node "
                    f"{atom_text(node)} aborted since it cannot handle "
                    f"{_erlang_string_list(absent)}.**")
            self.peer_flags, self.peer_creation = peer_flags, creation
            self._send(b"r" + _U32.pack(self._challenge) + digest(self.cookie, challenge))
            self.state = State.AWAIT_ACK
            return None

        if st is State.AWAIT_REPLY:
            if tag != b"r" or len(m) != 21:
                raise HandshakeError(f"expected a challenge reply, got {m[:16]!r}")
            (their_challenge,) = _U32.unpack_from(m, 1)
            # constant time: how much of a guessed digest matched must not leak
            if not hmac.compare_digest(m[5:], digest(self.cookie, self._challenge)):
                self.state = State.CLOSED
                return Failed("invalid challenge reply (the cookies differ)",
                              f"** Connection attempt from node {atom_text(self.peer_node)} "
                              f"rejected. Invalid challenge reply. **")
            self._send(b"a" + digest(self.cookie, their_challenge))
            return self._complete()

        if st is State.AWAIT_ACK:
            if tag != b"a" or len(m) != 17:
                raise HandshakeError(f"expected a challenge ack, got {m[:16]!r}")
            if not hmac.compare_digest(m[1:], digest(self.cookie, self._challenge)):
                self.state = State.CLOSED
                return Failed("invalid challenge ack (the cookies differ)",
                              f"** Connection attempt to node {atom_text(self.peer_node)} "
                              f"cancelled. Invalid challenge ack. **")
            return self._complete()
        raise HandshakeError(f"unexpected message in state {st.value}")

    def _complete(self) -> Completed:
        self.state = State.CONNECTED
        leftover = bytes(self._in)
        self._in.clear()
        return Completed(self.peer_node, self.this_flags & self.peer_flags, self.peer_flags,
                         self.peer_creation, leftover)


def _node_name(raw: bytes) -> str:
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HandshakeError(f"node name {raw[:64]!r} is not UTF-8") from None
    alive, at, host = name.partition("@")
    if not alive or not at or not host or "@" in host:
        raise HandshakeError(f"{name[:64]!r} is not a node name")
    return name


def _erlang_string_list(items: list[str]) -> str:
    """Format a list of strings as Erlang's ~p does: ["V4_NC","UNLINK_ID"]."""
    return "[" + ",".join(f'"{s}"' for s in items) + "]"
