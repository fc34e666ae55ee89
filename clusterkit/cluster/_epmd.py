"""The EPMD names call the EPMD-based strategies use (net_adm:names/1), replaceable in tests.

A names call takes a host and returns [(name, port), ...] as that host's EPMD lists
them, or raises OSError / EpmdError when it cannot be asked.
"""
from __future__ import annotations

from typing import Callable

from ..epmd import client

NamesCall = Callable[[str], list]


def names_call(epmd_port: int | None = None, timeout: float = client.DEFAULT_TIMEOUT) -> NamesCall:
    """A names call that asks EPMD on `epmd_port` (None: ERL_EPMD_PORT or 4369), as
    net_adm:names/1 does. It blocks for at most `timeout` seconds; strategies call it on
    their worker thread, never on a node's loop."""
    def names(host: str) -> list:
        port = client.default_port() if epmd_port is None else epmd_port
        return list(client.names_sync(host, port, timeout=timeout).nodes)
    return names
