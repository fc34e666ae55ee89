"""Atoms that more than one runtime module speaks, and the shape of a gen call.

One definition each, so that a typo cannot make two modules disagree on the wire.
Protocol-private atoms (global's, rex's) stay in the module that speaks them.
"""
from __future__ import annotations

from typing import Any

from ..etf import Atom, Pid

GEN_CALL, GEN_CAST = Atom("$gen_call"), Atom("$gen_cast")
OK, ERROR, YES = Atom("ok"), Atom("error"), Atom("yes")
DOWN, PROCESS, EXIT = Atom("DOWN"), Atom("process"), Atom("EXIT")
NORMAL, KILL, KILLED, SHUTDOWN = Atom("normal"), Atom("kill"), Atom("killed"), Atom("shutdown")
NOPROC, NOCONNECTION, TIMEOUT = Atom("noproc"), Atom("noconnection"), Atom("timeout")
NODEUP, NODEDOWN = Atom("nodeup"), Atom("nodedown")
BADRPC, UNDEF = Atom("badrpc"), Atom("undef")


def is_from(from_: Any) -> bool:
    """A well-formed gen_server `From`: {Pid, Tag}. The tag may be anything, including
    OTP 25's improper list [alias | Ref], which the reply must echo exactly."""
    return type(from_) is tuple and len(from_) == 2 and isinstance(from_[0], Pid)


def gen_call(message: Any) -> tuple[Any, Any] | None:
    """(From, Request) when `message` is {'$gen_call', From, Request}; None otherwise."""
    if type(message) is tuple and len(message) == 3 and message[0] == GEN_CALL \
            and is_from(message[1]):
        return message[1], message[2]
    return None


def gen_cast(message: Any) -> tuple[bool, Any]:
    """(True, Request) when `message` is {'$gen_cast', Request}."""
    if type(message) is tuple and len(message) == 2 and message[0] == GEN_CAST:
        return True, message[1]
    return False, None
