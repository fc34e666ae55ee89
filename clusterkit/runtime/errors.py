"""The runtime's exceptions. The public API re-exports them under the same names."""
from __future__ import annotations

from typing import Any


class BadArg(ValueError):
    """Erlang's badarg: for example a send to a name that nothing is registered under."""


class CallError(RuntimeError):
    """A call (GenServer.call, ping, rpc) that got no reply: the reason says why."""

    def __init__(self, message: str, reason: Any):
        super().__init__(message)
        self.reason = reason


class CallTimeout(CallError, TimeoutError):
    pass


class ReceiveTimeout(TimeoutError):
    """`receive` found no (matching) message before its timeout."""


class ProcessExit(RuntimeError):
    """Raised in a spawned process's thread once an exit signal has ended the process
    (Python cannot stop a thread from outside: it stops at its next receive or send)."""

    def __init__(self, reason: Any):
        super().__init__(f"this process was ended by an exit signal: {reason!r}")
        self.reason = reason


class NotAlive(RuntimeError):
    """Distribution is not started in this process: call ck.start(...) first."""
