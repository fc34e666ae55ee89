"""EPMD, the Erlang Port Mapper Daemon: protocol, daemon and client.

The protocol module is sans-I/O; the daemon and the client are asyncio. They
speak the real wire format, so `epmd -names` sees nodes registered here, and
Erlang nodes register here as they would with Erlang's own epmd.
"""
from .client import (
    EpmdNoReply,
    EpmdUnavailable,
    NameInUse,
    Registration,
    default_port,
    dump,
    kill,
    kill_sync,
    names,
    names_sync,
    port_please,
    port_please_sync,
    register,
    stop,
)
from .daemon import AlreadyRunning, EpmdDaemon, ensure_running, run, serve
from .protocol import (
    NODE_TYPE_HIDDEN,
    NODE_TYPE_VISIBLE,
    EpmdError,
    NodeInfo,
    ProtocolError,
    Registry,
    ServerConnection,
)

__all__ = [
    "AlreadyRunning", "EpmdDaemon", "EpmdError", "EpmdNoReply", "EpmdUnavailable",
    "NODE_TYPE_HIDDEN", "NODE_TYPE_VISIBLE", "NameInUse", "NodeInfo", "ProtocolError",
    "Registration", "Registry", "ServerConnection", "default_port", "dump",
    "ensure_running", "kill", "kill_sync", "names", "names_sync", "port_please",
    "port_please_sync", "register", "run", "serve", "stop",
]
